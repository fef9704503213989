"""Checkpoints with metadata: saved atomically, refused when they belong to another run.

A checkpoint is ``{"state_dict": ..., "meta": {...}}`` where ``meta`` holds the model's config
(enough to rebuild it, pruned or not), the dataset and profile it was trained under, the key it
was made under (``common.cache``), epochs, accuracy and training time.

When ``$STUDY_CHECKPOINT_LOG`` names a file (the runner sets it for each stage), every checkpoint
loaded or saved appends ``<path>\t<sha256 of the file>`` to it: the stage's completion record
keeps the hashes of the checkpoints it really used.
``study.loading.load_model(path)`` gives any model of the study back, ready for evaluation.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch
from common.errors import UserError
from common.models import VGG, model_from_config
from common.paths import checkpoints_root, run_folder
from common.results import atomic_path


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint was made under another dataset or profile than the one asked for."""


CHECKPOINT_LOG = "STUDY_CHECKPOINT_LOG"   # environment variable: where to list the checkpoints used
_ANNOUNCED: set[str] = set()   # checkpoints this process has printed a [cache] line for


def announce(name: str, text: str) -> None:
    """Print ``[cache] <name>: <text>`` the first time this process speaks of checkpoint ``name``
    (a stage reads a model again after training it: one line per model)."""
    if name not in _ANNOUNCED:
        _ANNOUNCED.add(name)
        print(f"[cache] {name}: {text}")


def log_use(path: Path, sha256: str) -> None:
    """Append ``path`` and its file's ``sha256`` to ``$STUDY_CHECKPOINT_LOG`` when set (one short
    line in append mode: workers of a pool may log at the same time)."""
    log = os.environ.get(CHECKPOINT_LOG)
    if log:
        with open(log, "a") as handle:
            handle.write(f"{Path(path).resolve()}\t{sha256}\n")


def checkpoint_path(dataset: str, profile: str, name: str) -> Path:
    """``checkpoints/<dataset>-<profile>/<name>.pt``."""
    return checkpoints_root() / run_folder(dataset, profile) / f"{name}.pt"


def save_checkpoint(path: str | os.PathLike, model: VGG, meta: dict) -> Path:
    """Write weights and metadata to ``path`` atomically; ``meta`` must name dataset and profile."""
    for key in ("dataset", "profile"):
        if key not in meta:
            raise ValueError(f"checkpoint metadata needs {key!r}")
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper saves its original
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = {"state_dict": state,
               "meta": {**meta, "model_config": model.config}}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    log_use(Path(path), hashlib.sha256(buffer.getvalue()).hexdigest())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, dataset: str | None = None,
                    profile: str | None = None, map_location: str | torch.device = "cpu"
                    ) -> tuple[VGG, dict]:
    """Rebuild the model stored at ``path`` and return ``(model, meta)``.

    When ``dataset`` / ``profile`` are given, a checkpoint made under other ones is refused with
    CheckpointMismatchError (its numbers would silently mix two studies).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        meta = payload["meta"]
    except Exception as exc:   # truncated, damaged, or not a checkpoint of this project
        raise UserError(f"{path} cannot be read (truncated, or not a checkpoint: {type(exc).__name__}); "
                        "delete it and rerun: the stage that needs it trains it again") from None
    for key, wanted in (("dataset", dataset), ("profile", profile)):
        if wanted is not None and meta.get(key) != wanted:
            raise CheckpointMismatchError(
                f"{path} was trained with {key}={meta.get(key)!r}, but this run uses "
                f"{key}={wanted!r}; delete it or run with --{key} {meta.get(key)}")
    model = model_from_config(meta["model_config"])
    model.load_state_dict(payload["state_dict"])
    log_use(path, hashlib.sha256(data).hexdigest())
    return model, meta
