"""Does the CUDA-graphed training step train like the eager one? Measured against the noise floor.

A captured step that replays a stale batch, skips an update or records the wrong learning rate
still runs, fast and silently. ``step_agreement`` trains one VGG from one initialisation on the
same pre-made batches (augmented once, held on the device) and the same learning-rate schedule
four times: the eager step twice, the eager step with the fused SGD the graphed step uses, and
the graphed step. Two trainings that differ only in rounding or in the order float atomics add
up drift apart over hundreds of steps, so the graphed run is judged against that drift, not
against zero: the *noise floor* is the larger difference from the first eager run of the repeated
eager run (atomics, non-deterministic kernels) and of the fused-SGD eager run (rounding of the
fused update). The check passes when the graphed run's difference is at most ``FACTOR`` times the
noise floor, for the largest parameter difference and for the mean training loss alike.
On a CPU there is no graph to capture (``GraphedStep`` runs eagerly), so the check is for CUDA.
"""

from __future__ import annotations

import torch

from common.augment import BatchTransform
from common.models import build_model
from common.train_step import EagerStep, GraphedStep
from common.numerics import fast_bf16_available
from common.training import Recipe, cross_entropy_loss, lr_at, make_optimizer

FACTOR = 4.0     # graphed may differ from eager by this many times the eager-vs-eager noise


def fixed_batches(images: torch.Tensor, labels: torch.Tensor, steps: int, batch_size: int,
                  dataset: str, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` augmented, channels_last batches (x [B,3,32,32] float, y [B]) drawn with a
    seeded generator from uint8 ``images`` [N,3,32,32] and ``labels`` [N], on their device."""
    generator = torch.Generator(device=images.device).manual_seed(seed)
    transform = BatchTransform(dataset, augment=True, generator=generator, channels_last=True)
    pick = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(steps):
        idx = torch.randint(len(images), (batch_size,), generator=pick).to(images.device)
        batches.append((transform(images[idx]), labels[idx]))
    return batches


def train_on(batches, step_kind: str, model_name: str, classes: int, width: float,
             device: torch.device) -> tuple[dict[str, torch.Tensor], float]:
    """Train a fresh ``model_name`` (seed 0) on ``batches`` with ``step_kind`` ('eager',
    'eager fused' or 'graphed'); returns (state_dict on the CPU, mean training loss)."""
    torch.manual_seed(0)
    model = build_model(model_name, classes, width).to(device).to(memory_format=torch.channels_last).train()
    recipe = Recipe(epochs=1, batch_size=len(batches[0][1]))
    params = list(model.parameters())
    bf16 = fast_bf16_available(device)
    loss_fn = cross_entropy_loss()
    if step_kind == "graphed":
        step = GraphedStep(model, loss_fn, params, recipe, device, bf16)
    else:
        optimizer = make_optimizer(params, recipe) if step_kind in ("eager", "eager again") else torch.optim.SGD(
            params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
            nesterov=recipe.nesterov, fused=True)
        step = EagerStep(model, loss_fn, optimizer, device, bf16)
    for i, (x, y) in enumerate(batches):
        step(x, y, lr_at(i, len(batches), recipe))
    loss = (step.loss_sum / sum(len(y) for _, y in batches)).item()
    return {k: v.detach().float().cpu() for k, v in model.state_dict().items()}, loss


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference over every floating-point tensor of two state_dicts."""
    return max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())


def judge(graphed: dict, floor: dict, factor: float = FACTOR) -> bool:
    """Pass when each of the graphed run's differences (``param_max_abs``, ``loss_abs``) is at
    most ``factor`` times the noise floor's."""
    return all(graphed[k] <= factor * floor[k] for k in ("param_max_abs", "loss_abs"))


def step_agreement(images: torch.Tensor, labels: torch.Tensor, dataset: str, classes: int,
                   steps: int = 300, batch_size: int = 128, model_name: str = "vgg11",
                   width: float = 1.0) -> list[dict]:
    """Rows (run, param_max_abs, loss_abs, mean_train_loss, noise-floor / verdict columns) of the
    graphed-vs-eager check on ``images``' device; the last row is the graphed run, with
    ``passed`` (bool) and ``factor``."""
    device = images.device
    batches = fixed_batches(images, labels, steps, batch_size, dataset)
    runs = {kind: train_on(batches, kind, model_name, classes, width, device)
            for kind in ("eager", "eager again", "eager fused", "graphed")}
    reference_state, reference_loss = runs["eager"]
    rows = []
    for kind in ("eager again", "eager fused", "graphed"):
        state, loss = runs[kind]
        rows.append({"run": kind, "model": model_name, "width": width, "steps": steps,
                     "batch_size": batch_size, "param_max_abs": max_difference(reference_state, state),
                     "loss_abs": abs(loss - reference_loss), "mean_train_loss": loss})
    floor = {k: max(r[k] for r in rows[:2]) for k in ("param_max_abs", "loss_abs")}
    rows[-1].update(passed=judge(rows[-1], floor), factor=FACTOR,
                    floor_param_max_abs=floor["param_max_abs"], floor_loss_abs=floor["loss_abs"])
    return rows

