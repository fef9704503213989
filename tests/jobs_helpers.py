"""Job functions for tests/test_jobs.py (importable by spawned worker processes)."""

import time

from common.results import atomic_path


def fail_soon(ctx, seconds: float) -> None:
    time.sleep(seconds)
    raise ValueError("this job fails on purpose")


def write_slowly(ctx, path: str, seconds: float) -> None:
    """Hold a half-written file for ``seconds``, then finish it."""
    with atomic_path(path) as tmp:
        tmp.write_text("partial")
        time.sleep(seconds)
        tmp.write_text("done")


def append_line(ctx, path: str, text: str) -> None:
    """Append ``text`` to ``path`` (how many times a job ran)."""
    with open(path, "a") as f:
        f.write(text + "\n")
