"""The one rule of every cache: an artefact is reused only when its key matches all that made it.

Every artefact this project reuses instead of making it again -- a checkpoint (baseline, student,
DKD candidate, colour-jitter teacher, pruned model), the resume state of an unfinished training,
results rows a later run reads back (a sensitivity sweep, Hessian traces) -- stores the key it was
made under (``artefact_key``):

- ``settings``: the recipe and the method's settings (epochs, learning rate, hyper-parameters...);
- ``data``: the dataset, the sha256 of its files, the split sizes and the seed that draws them
  (``common.data.split_key``);
- ``inputs``: by role, the sha256 of the weights (``weights_sha256``) of every model it starts
  from or learns from: ``teacher``, ``base teacher``, ``base model``, and for a resume state
  ``start``, the weights its training started from;
- ``code``: the sha256 of the normalised source of the module that makes it and of every project
  module that one imports (``common.code``).

``reusable`` is the rule. Settings, data and inputs must be equal, or the artefact is made again
and one line says why (``[cache] vgg16_colour_seed0: its base teacher changed; retraining``).
Code: results rows and resume states are made again when it differs; a checkpoint made by other
code is reused and one line says so (``[cache] vgg11_seed0: trained by other code; reused,
FORCE_RETRAIN=1 retrains it``), because retraining costs hours where most edits change nothing
that was trained; ``FORCE_RETRAIN=1`` retrains every such checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from common.checkpoints import announce, load_checkpoint
from common.models import VGG

FORCE_RETRAIN = "FORCE_RETRAIN"     # environment variable: retrain checkpoints made by other code
KEY = "cache_key"                   # where a checkpoint's metadata or a results sidecar keeps its key
START = "start"                     # the input role of the weights a training starts from (``fit``)


def weights_sha256(model: torch.nn.Module) -> str:
    """sha256 of ``model``'s state_dict (names, dtypes, shapes and values, in key order): what
    identifies a trained model, e.g. a teacher, whatever its accuracy or file timestamp. Reads
    the tensors wherever they are (copies them to the CPU)."""
    model = getattr(model, "_orig_mod", model)
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        # a copy: numpy sharing a buffer's storage would make it non-resizable (a PT2E observer's
        # empty min/max buffers are resized on their first call)
        tensor = tensor.detach().to("cpu", copy=True).contiguous().reshape(-1)   # 0-d buffers too
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def artefact_key(settings: dict, data: dict, inputs: dict[str, str] | None = None, code: str = "") -> dict:
    """The key an artefact is stored with (JSON-able): ``settings``, ``data`` (a ``split_key``),
    ``inputs`` (role -> weights sha256) and ``code`` (``common.code.code_sha256``)."""
    return {"settings": settings, "data": data, "inputs": dict(inputs or {}), "code": code}


def _changes(old, new, prefix: str = "") -> list[str]:
    """'name old -> new' for every leaf that differs between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for k in sorted(set(old) | set(new), key=str)
                for change in _changes(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [f"{prefix.rstrip('.')} {old} -> {new}"]


def difference(recorded: dict | None, wanted: dict) -> str | None:
    """Why an artefact stored under ``recorded`` is not the one ``wanted`` describes -- its
    settings, data or inputs differ -- in a few words; None when they are equal (code aside)."""
    if not recorded or "data" not in recorded:
        return "stored without a cache key (made by an older version of this project)"
    old_data, new_data = recorded.get("data") or {}, wanted["data"]
    if old_data.get("files_sha256") != new_data.get("files_sha256"):
        return "the data files changed"
    if old_data != new_data:
        return f"the data split changed ({', '.join(_changes(old_data, new_data)[:3])})"
    old_inputs, new_inputs = recorded.get("inputs") or {}, wanted["inputs"]
    for role in sorted(set(old_inputs) | set(new_inputs), key=lambda r: (r == START, r)):   # the cause first
        if old_inputs.get(role) != new_inputs.get(role):
            return "the weights it starts from changed" if role == START else f"its {role} changed"
    if recorded.get("settings") != wanted["settings"]:
        changes = _changes(recorded.get("settings"), wanted["settings"])
        return f"its settings changed ({', '.join(changes[:3])}{', ...' if len(changes) > 3 else ''})"
    return None


def force_retrain() -> bool:
    """Whether ``FORCE_RETRAIN=1`` asks to retrain checkpoints made by other code."""
    return os.environ.get(FORCE_RETRAIN, "0") not in ("", "0")


def reusable(name: str, recorded: dict | None, wanted: dict, verb: str = "retraining",
             code_decides: bool = False) -> bool:
    """The rule: whether the artefact ``name`` stored under ``recorded`` may stand for one made
    under ``wanted``. Prints one ``[cache]`` line when it may not (saying why and ``verb``), and
    when it is reused although made by other code. Other code decides when ``code_decides``
    (results rows, resume states) or under ``FORCE_RETRAIN=1``."""
    reason = difference(recorded, wanted)
    if reason is None and recorded.get("code") != wanted["code"]:
        if not (code_decides or force_retrain()):
            announce(name, f"made by other code than today's; reused ({FORCE_RETRAIN}=1 retrains it)")
            return True
        reason = "made by other code than today's"
    if reason is None:
        return True
    print(f"[cache] {name}: {reason}; {verb}", flush=True)
    return False


def cached_model(path: Path, name: str, wanted: dict, dataset: str, profile: str,
                 device: torch.device | str) -> tuple[VGG, dict] | None:
    """The checkpoint ``name`` at ``path`` as ``(model on device in eval mode, meta)`` when it
    exists and is ``reusable`` under ``wanted``; else None (the caller trains it)."""
    if not path.exists():
        return None
    model, meta = load_checkpoint(path, dataset, profile)
    if not reusable(name, meta.get(KEY), wanted):
        return None
    accuracy = f" (test top-1 {meta['test_top1_acc']:.2f}%)" if "test_top1_acc" in meta else ""
    announce(name, f"{path}{accuracy}")
    return model.to(device).eval(), meta
