"""Real file sizes: bytes of files written to disk (latency lives in ``common.timing``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from common.results import atomic_path


def file_size_bytes(path: str | os.PathLike) -> int:
    """Size of a real file on disk, in bytes."""
    return os.path.getsize(path)


def saved_size_bytes(obj, path: str | os.PathLike) -> int:
    """``torch.save(obj)`` to ``path`` (atomically) and return the file's size in bytes."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return file_size_bytes(Path(path))
