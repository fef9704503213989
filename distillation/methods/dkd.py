"""Decoupled knowledge distillation (Zhao et al., CVPR 2022): TCKD and NCKD weighted apart."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillation.losses import dkd_loss
from distillation.methods.base import Distiller, LossParts


class DKD(Distiller):
    """``ce_weight * CE + warmup * (alpha * TCKD + beta * NCKD)``.

    Defaults are mdistiller's CIFAR-100 DKD settings (alpha 1, beta 8, T 4, CE weight 1, the KD
    term ramped in linearly over the first 20 of 240 epochs; its VGG-13 -> VGG-8 config uses
    beta 6). mdistiller ramps per epoch, ``min(epoch / 20, 1)`` with 1-based epochs; here the
    ramp is per step, ``min(step / (warmup_fraction * total_steps), 1)`` with ``step`` the
    1-based training step (``steps_done``), so the first step already gets a small weight.
    Without ``total_steps`` (or with ``warmup_fraction=0``) there is no warm-up.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None,
                 total_steps: int | None = None, *, alpha: float = 1.0, beta: float = 8.0,
                 temperature: float = 4.0, ce_weight: float = 1.0,
                 warmup_fraction: float = 20 / 240):
        super().__init__(student, teacher, total_steps)
        if not 0.0 <= warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1], got {warmup_fraction}")
        self.alpha = alpha
        self.beta = beta
        self.temperature = temperature
        self.ce_weight = ce_weight
        self.warmup_fraction = warmup_fraction

    def warmup(self) -> torch.Tensor | float:
        """Weight of the DKD term now: ``min(steps_done / warmup_steps, 1)``, or 1.0 without warm-up."""
        if self.total_steps is None or self.warmup_fraction == 0:
            return 1.0
        warmup_steps = max(1.0, self.warmup_fraction * self.total_steps)
        return (self.steps_done / warmup_steps).clamp(max=1.0)

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """Logits [B,C], the weighted loss and its parts {"ce", "dkd"} (weights and warm-up applied)."""
        logits = self.student(x)
        teacher_logits, _ = self.teacher_outputs(x)
        ce = self.ce_weight * F.cross_entropy(logits, y)
        dkd = self.warmup() * dkd_loss(logits, teacher_logits, y, self.alpha, self.beta,
                                       self.temperature)
        return logits, ce + dkd, {"ce": ce.detach(), "dkd": dkd.detach()}
