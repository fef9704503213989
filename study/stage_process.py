"""A stage as a process of its own: its output to its log (and the terminal when asked), Ctrl-C
passed to it once with time to stop cleanly, the CPU time it took, its log's last lines."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from study.status import PREFIX

STOP_GRACE_SECONDS = 30.0   # a stopped stage's time to stop cleanly (its pool gives its workers 10 s)
FAILED_TAIL_LINES = 12      # a failed stage's last lines of output, shown under its status line


def _copy_lines(source, log: Path | None, echo: bool) -> None:
    """Copy a stage's output to ``log`` (and this process's stdout when ``echo``) until it closes."""
    with open(log, "w") as out:
        for line in source:
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            out.write(line)
            out.flush()


def run_logged(command: list[str], log: Path | None, env: dict | None = None, echo: bool = True) -> int:
    """Run ``command`` in the project root with ``env`` added to this environment, its output to
    ``log`` (and to this process's stdout when ``echo``; without a log, to stdout alone); returns
    its exit status.

    The stage runs in a process group of its own, so Ctrl-C reaches it once, from here: on
    KeyboardInterrupt (or SIGTERM) this sends SIGINT to its group (its pool workers too), waits up
    to ``STOP_GRACE_SECONDS`` for it to stop cleanly (half-written files removed, a training's
    last finished epoch kept), kills it only then, and raises KeyboardInterrupt."""
    from common.results import PROJECT_ROOT

    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, process_group=0,
                            stdout=subprocess.PIPE if log else None, stderr=subprocess.STDOUT if log else None,
                            text=True)
    copier = threading.Thread(target=_copy_lines, args=(proc.stdout, log, echo), daemon=True) if log else None
    if copier:
        copier.start()
    try:
        status = proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        raise
    if copier:
        copier.join()
    return status


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to ``proc``'s group, then ``STOP_GRACE_SECONDS`` to exit, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def log_of(log_dir: Path, name: str) -> Path:
    """``<log_dir>/<stage name with / as _>.log``."""
    return log_dir / f"{name.replace('/', '_')}.log"


def show_tail(log: Path) -> None:
    """The last ``FAILED_TAIL_LINES`` lines of a failed stage's log, indented, on stderr."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    for line in lines[-FAILED_TAIL_LINES:]:
        print(f"    {line}", file=sys.stderr)
    print(f"{PREFIX} its whole output: {log}", file=sys.stderr, flush=True)


