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


def record_threads(ctx, path: str) -> None:
    """Write the job's torch thread count to ``path``."""
    import torch

    with open(path, "w") as f:
        f.write(str(torch.get_num_threads()))


def download_and_count(name, root) -> None:
    """A stand-in for ``common.data._download``: appends this process's pid to
    ``$FAKE_DOWNLOAD_LOG`` (one line per call) and copies the CIFAR-10 folder of
    ``$FAKE_CIFAR_SOURCE`` into ``root``."""
    import os
    import shutil
    from pathlib import Path

    with open(os.environ["FAKE_DOWNLOAD_LOG"], "a") as log:
        log.write(f"{os.getpid()}\n")
    shutil.copytree(Path(os.environ["FAKE_CIFAR_SOURCE"]) / "cifar-10-batches-py", Path(root) / "cifar-10-batches-py",
                    dirs_exist_ok=True)
