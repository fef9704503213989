"""Interrupted trainings resume: ``fit`` saves its whole state at every epoch end, beside the cache.

The state file (``checkpoints/<dataset>-<profile>/<name>.resume.pt``) holds the model's and the
optimizer's tensors, the position in the schedule (epoch and step), every random generator the
training draws from (torch's CPU and CUDA generators, the augmentation and shuffling generators)
and the history so far, and is written atomically (a kill mid-write leaves the previous epoch's).
A rerun of the same training resumes from it and ends bit-identical to an uninterrupted run on
the same machine. "The same" is decided by the one rule of ``common.cache``: the state's key holds
the recipe, the data, the sha256 of the weights the training starts from (a distiller's include its
teacher's) and the code, and any difference starts the training over, saying why. The state file
goes once the training's result is kept (``fit``, or the caller that caches the model).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from common.cache import reusable
from common.results import atomic_path


def resume_path(checkpoint: Path) -> Path:
    """Where the training state of the model cached at ``checkpoint`` lives while it trains."""
    return checkpoint.with_suffix(".resume.pt")


def _params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def save_state(path: Path, key: dict, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int, step: int,
               history: list[dict], generators: dict[str, torch.Generator]) -> None:
    """Write the training state after ``epoch`` (``step`` optimizer steps done) to ``path``, atomically.
    ``key`` identifies the training (recipe and model) so another training never resumes from it."""
    state = {"key": key, "epoch": epoch, "step": step, "history": history,
             "model": model.state_dict(),
             "optimizer": {i: dict(optimizer.state[p]) for i, p in enumerate(_params(optimizer))
                           if p in optimizer.state},
             "generators": {name: g.get_state() for name, g in generators.items()},
             "torch_rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path | None, key: dict, label: str = "training") -> dict | None:
    """The saved state at ``path`` when it belongs to the training ``key`` (``common.cache``),
    else None, saying why (also for an unreadable file, which a new training then overwrites)."""
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:   # a state file of another torch, or damaged: start over, saying so
        print(f"[resume] {path} cannot be read ({type(exc).__name__}); training from the start")
        return None
    reused = reusable(label, state.get("key"), key, verb="training from the start", code_decides=True)
    return state if reused else None


def restore_state(state: dict, model: nn.Module, optimizer: torch.optim.Optimizer,
                  generators: dict[str, torch.Generator]) -> None:
    """Put ``state`` back into the model, the optimizer (before any step, so a CUDA graph captures
    the restored tensors) and the generators."""
    model.load_state_dict(state["model"])
    params = _params(optimizer)
    for index, saved in state["optimizer"].items():
        p = params[index]
        optimizer.state[p] = {k: v.to(p.device) if torch.is_tensor(v) else v for k, v in saved.items()}
    for name, generator in generators.items():
        generator.set_state(state["generators"][name])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
