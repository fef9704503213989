"""Where the study's outputs go, and whether they can go there; imports no torch (the runner
checks its folders and prints its first line before loading the study)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def results_root() -> Path:
    """``$RESULTS_DIR`` if set, else ``<project>/results``."""
    return Path(os.environ.get("RESULTS_DIR") or PROJECT_ROOT / "results")


def checkpoints_root() -> Path:
    """``$CHECKPOINT_DIR`` if set, else ``<project>/checkpoints``."""
    return Path(os.environ.get("CHECKPOINT_DIR") or PROJECT_ROOT / "checkpoints")


def run_folder(dataset: str, profile: str) -> str:
    """The folder name that keeps datasets and profiles apart, e.g. ``cifar10-cpu``."""
    return f"{dataset}-{profile}"


def writable_folder(folder: str | os.PathLike, what: str, setting: str) -> Path:
    """``folder``, created if missing, once a file can be made and removed in it; else a one-line
    ``UserError`` naming it (``what``: e.g. 'results folder') and how to choose another
    (``setting``: e.g. 'RESULTS_DIR'). Called before any work, so that a run that cannot write
    its outputs writes nothing."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise UserError(f"cannot write the {what} {folder} ({exc.strerror}); make it writable, or choose another "
                        f"folder with {setting}") from None
    return folder
