"""Errors a user can cause (a damaged file, a value out of range) are one line, not a traceback.

``UserError`` is raised for them anywhere in the library; ``install`` (called by every script's
shared flags, ``common.flags.add_common_args``, and by the runner) makes an uncaught one print as
``error: <what, and what to do>`` with exit status 1, and Ctrl-C print one line saying what was
kept. Any other exception is a bug of the program and keeps its traceback. It also makes standard
output line-buffered, so a log or a pipe (the runner's stage logs, ``| tee``) shows each progress
line when it is printed, not at exit.
"""

from __future__ import annotations

import sys

INTERRUPTED = ("interrupted (Ctrl-C): finished models and results are kept, and a training stopped "
               "mid-way resumes from its last finished epoch: run the same command again")


class UserError(Exception):
    """A mistake in what the user gave or has on disk; its message says what to do."""


def _hook(kind, value, traceback) -> None:
    if issubclass(kind, UserError):
        print(f"error: {value}", file=sys.stderr)
    elif issubclass(kind, KeyboardInterrupt):
        print(f"\n{INTERRUPTED}", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, traceback)


def install() -> None:
    """Print uncaught ``UserError``s and Ctrl-C as one line, and flush standard output at every line
    (idempotent)."""
    sys.excepthook = _hook
    if hasattr(sys.stdout, "reconfigure"):   # a replaced stdout (pytest's capture) keeps its own rule
        sys.stdout.reconfigure(line_buffering=True)
