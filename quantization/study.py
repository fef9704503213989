"""What every quantization experiment shares: the base model, calibration data, QAT fine-tuning,
accuracy columns and the file sizes of each format (latency goes through ``common.timing``).

Calibration uses a fixed, seeded subset of the training split (never test images); every tuned
choice (bit allocation, "best" rows) reads the validation split; reported accuracy is on the
test split; QAT curves are read on validation, and test only scores the final model.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from common.augment import BatchTransform
from common.baselines import finetune_recipe, get_baseline
from common.cli import RunContext
from common.measure import saved_size_bytes
from common.models import VGG
from common.paths import checkpoints_root, run_folder
from common.training import fit
from quantization.fake_quant import Scheme, apply_scheme, bake
from quantization.storage import save_weight_quantized

TASK = "quantization"
BASE_MODEL = "vgg11"
CALIBRATION_IMAGES = 2048
CALIBRATION_BATCH = 256
LATENCY_BATCH = 256


def base_model(ctx: RunContext) -> tuple[VGG, dict]:
    """The trained fp32 VGG-11 of this run (cached baseline) in eval mode, and its metadata."""
    return get_baseline(ctx, BASE_MODEL)


def calibration_batches(ctx: RunContext, images: int = CALIBRATION_IMAGES,
                        batch_size: int = CALIBRATION_BATCH) -> list[torch.Tensor]:
    """Normalised batches [B,3,32,32] (no augmentation) of a seeded subset of the *training*
    split: ``images`` images (fewer when the split is smaller)."""
    train = ctx.splits.train_images
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed))
    chosen = train[pick[:images].to(train.device)]
    transform = BatchTransform(ctx.dataset)
    return [transform(chosen[i:i + batch_size]) for i in range(0, len(chosen), batch_size)]


def latency_batch(ctx: RunContext, batch_size: int = LATENCY_BATCH) -> torch.Tensor:
    """A normalised, channels_last batch [B,3,32,32] of validation images for timing."""
    images = ctx.splits.val_images
    reps = -(-batch_size // len(images))
    return BatchTransform(ctx.dataset)(images.repeat(reps, 1, 1, 1)[:batch_size])


def quantized_copy(model: nn.Module, scheme: Scheme, ctx: RunContext) -> nn.Module:
    """A fake-quantized copy of ``model`` under ``scheme`` (activations calibrated on train images)."""
    calibration = calibration_batches(ctx) if scheme.activations else None
    return apply_scheme(copy.deepcopy(model), scheme, calibration).eval()


def test_top1(model: nn.Module, ctx: RunContext) -> float:
    """Top-1 (%) on the test split."""
    return ctx.evaluate(model, "test")["top1_acc"]


def accuracy_columns(model: nn.Module, ctx: RunContext) -> dict:
    """val_top1_acc (for choices) and top1_acc (test, for reporting) of ``model``, in %."""
    return {"val_top1_acc": ctx.evaluate(model, "val")["top1_acc"], "top1_acc": test_top1(model, ctx)}


def qat_finetune(model: nn.Module, ctx: RunContext, epochs: int, desc: str, bf16: bool = True,
                 eval_split: str | None = "val") -> list[dict]:
    """Quantization-aware fine-tune of an already quantized (fake-quant) ``model`` in place: the
    pruning study's short cosine recipe (a tenth of the profile's peak lr), under bf16 autocast
    only when ``bf16``; an interrupted run resumes (``fit``). Returns ``fit``'s history, with ``<eval_split>_top1_acc`` after every
    epoch (evaluated with observers frozen)."""
    # eager step: the fake quantizers test their observer flags on the host, which a CUDA graph
    # cannot record
    recipe = finetune_recipe(ctx, epochs).but(bf16=bf16, step="eager")
    return fit(model, ctx.splits, recipe, ctx.device, eval_split=eval_split, progress=ctx.progress, desc=desc,
               resume=ctx.resume_file(desc), resume_key=ctx.artefact_key({}, code_of=__name__))


def quantized_dir(ctx: RunContext) -> Path:
    """``checkpoints/<dataset>-<profile>/quantized/`` (created): real files of each format."""
    folder = checkpoints_root() / run_folder(ctx.dataset, ctx.profile.name) / "quantized"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def quantized_file_bytes(model: nn.Module, config: dict, ctx: RunContext, name: str) -> int:
    """Bytes of the real file of ``model`` with ``config`` quantized (codes packed, fp16 rest),
    written to ``checkpoints/<dataset>-<profile>/quantized/<name>.pt``."""
    folder = quantized_dir(ctx)
    return save_weight_quantized(model, config, folder / f"{name}.pt")


def state_dict_bytes(model: nn.Module, ctx: RunContext, name: str) -> int:
    """Bytes of ``torch.save(model.state_dict())`` in the model's own dtypes."""
    folder = quantized_dir(ctx)
    return saved_size_bytes(model.state_dict(), folder / f"{name}.pt")


def baked_copy(model: nn.Module) -> nn.Module:
    """A plain copy of a fake-quantized model with the rounded weights baked in."""
    return bake(copy.deepcopy(model))
