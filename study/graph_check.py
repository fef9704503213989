"""Does the CUDA-graphed training step train like the eager one? Measured against the noise floor.

A captured step that replays a stale batch, skips an update or records the wrong learning rate
still runs, fast and silently. ``step_agreement`` trains one VGG from one initialisation on the
same pre-made batches (augmented once, held on the device) and the same learning-rate schedule
four times, every run with the graphed step's own code (static buffers, fused SGD, the learning
rate a device tensor), so that like is compared with like: the *reference* runs it eagerly
(``GraphedStep(capture=False)``), *again* repeats the reference, *graphed* records and replays it
as a CUDA graph, and *after a failed capture* makes its capture fail on purpose (the loss reads a
tensor on the host while capturing) so that the step falls back to eager training. Two trainings
that differ only in the order float atomics add up drift apart over hundreds of steps, so the
graphed runs are judged against that drift, not against zero: the *noise floor* is how far the
repeated reference run ends from the reference (run-to-run non-determinism, nothing else). A run
passes when its difference from the reference is at most ``FACTOR`` times the floor, for the
largest parameter difference and for the mean training loss alike; with deterministic kernels the
floor is 0 and a run passes only when it is bit-identical.
On a CPU there is no graph to capture (``GraphedStep`` runs eagerly), so the check is for CUDA;
the tests run it on the CPU with a simulated capture, and with captures broken on purpose.
"""

from __future__ import annotations

import torch

from common.augment import BatchTransform
from common.models import build_model
from common.train_step import GraphedStep
from common.numerics import fast_bf16_available
from common.training import Recipe, cross_entropy_loss, lr_at

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


def reads_host_while_capturing(loss_fn):
    """``loss_fn`` that also reads its loss on the host (``.item()``) while a CUDA graph is being
    captured, which no capture allows: the forced capture failure. Elsewhere it is ``loss_fn``."""
    def loss(model, x, y):
        logits, value = loss_fn(model, x, y)
        if x.is_cuda and torch.cuda.is_current_stream_capturing():
            value.item()
        return logits, value
    loss.reads_host = True
    return loss


RUNS = {"reference": dict(capture=False), "again": dict(capture=False),
        "graphed": dict(capture=True), "after a failed capture": dict(capture=True, fail=True)}


def train_on(batches, run: str, model_name: str, classes: int, width: float,
             device: torch.device) -> tuple[dict[str, torch.Tensor], float]:
    """Train a fresh ``model_name`` (seed 0) on ``batches`` with the graphed step as ``RUNS[run]``
    says (captured or eager; a capture forced to fail); returns (state_dict on the CPU, mean
    training loss)."""
    how = RUNS[run]
    torch.manual_seed(0)
    model = build_model(model_name, classes, width).to(device).to(memory_format=torch.channels_last).train()
    recipe = Recipe(epochs=1, batch_size=len(batches[0][1]))
    loss_fn = cross_entropy_loss()
    if how.get("fail"):
        loss_fn = reads_host_while_capturing(loss_fn)
    step = GraphedStep(model, loss_fn, list(model.parameters()), recipe, device,
                       fast_bf16_available(device), capture=how["capture"])
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
    """Rows of the graphed-vs-eager check on ``images``' device, one per run compared with the
    reference (``RUNS``: 'again', 'graphed', 'after a failed capture'): run, model, width, steps,
    batch_size, param_max_abs, loss_abs, mean_train_loss, floor_param_max_abs, floor_loss_abs,
    factor, and ``passed`` (bool) for the judged runs ('' for the floor's own row)."""
    device = images.device
    batches = fixed_batches(images, labels, steps, batch_size, dataset)
    runs = {run: train_on(batches, run, model_name, classes, width, device) for run in RUNS}
    reference_state, reference_loss = runs["reference"]
    rows = []
    for run in ("again", "graphed", "after a failed capture"):
        state, loss = runs[run]
        rows.append({"run": run, "model": model_name, "width": width, "steps": steps,
                     "batch_size": batch_size, "param_max_abs": max_difference(reference_state, state),
                     "loss_abs": abs(loss - reference_loss), "mean_train_loss": loss})
    floor = {k: rows[0][k] for k in ("param_max_abs", "loss_abs")}
    for row in rows:
        row.update(floor_param_max_abs=floor["param_max_abs"], floor_loss_abs=floor["loss_abs"], factor=FACTOR,
                   passed=judge(row, floor) if row["run"] != "again" else "")
    return rows


def passed(rows: list[dict]) -> bool:
    """Whether every judged run of ``step_agreement``'s rows passed."""
    return all(r["passed"] for r in rows if r["passed"] != "")
