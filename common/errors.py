"""Errors a user can cause (a damaged file, a value out of range) are one line, not a traceback.

``UserError`` is raised for them anywhere in the library; ``install`` (called by every script's
shared flags, ``common.flags.add_common_args``, and by the runner) makes an uncaught one print as
``error: <what, and what to do>`` with exit status 1, and Ctrl-C print one line saying what was
kept. A folder or file the program cannot write or read (permission denied, read-only, full,
missing, a file where a folder should be) is one line naming it too. Any other exception is a
bug of the program and keeps its traceback. It also makes standard
output line-buffered, so a log or a pipe (the runner's stage logs, ``| tee``) shows each progress
line when it is printed, not at exit.
"""

from __future__ import annotations

import errno
import sys

INTERRUPTED = ("interrupted (Ctrl-C): finished models and results are kept, and a training stopped "
               "mid-way resumes from its last finished epoch: run the same command again")


class UserError(Exception):
    """A mistake in what the user gave or has on disk; its message says what to do."""


# Errors of the file system that the user, not the program, can fix.
_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                errno.EISDIR, errno.ENOENT}


def file_system_message(error: OSError) -> str | None:
    """``<why>: <path>; <what to do>`` for an ``OSError`` on a named path that the user can fix
    (permissions, a read-only or full disk, a missing folder, a file in a folder's place); None
    for any other."""
    if error.errno not in _USER_ERRNOS or not error.filename:
        return None
    return (f"{error.strerror}: {error.filename}; make the folder exist and be writable (or point RESULTS_DIR / "
            "CHECKPOINT_DIR elsewhere), then run the same command again")


def _hook(kind, value, traceback) -> None:
    if issubclass(kind, UserError):
        print(f"error: {value}", file=sys.stderr)
    elif issubclass(kind, OSError) and file_system_message(value):
        print(f"error: {file_system_message(value)}", file=sys.stderr)
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
