"""Knowledge distillation (Hinton et al. 2015): match the teacher's softened logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillation.losses import kd_loss
from distillation.methods.base import Distiller, LossParts


class KD(Distiller):
    """``ce_weight * CE + kd_weight * T^2 * KL(teacher_T || student_T)``.

    Defaults are mdistiller's CIFAR-100 KD settings (configs/cifar100/kd: T=4, CE weight 0.1,
    KD weight 0.9).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None,
                 total_steps: int | None = None, *, temperature: float = 4.0,
                 ce_weight: float = 0.1, kd_weight: float = 0.9):
        super().__init__(student, teacher, total_steps)
        self.temperature = temperature
        self.ce_weight = ce_weight
        self.kd_weight = kd_weight

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """Logits [B,C], the weighted loss and its parts {"ce", "kd"} (weights applied)."""
        logits = self.student(x)
        teacher_logits, _ = self.teacher_outputs(x)
        ce = self.ce_weight * F.cross_entropy(logits, y)
        kd = self.kd_weight * kd_loss(logits, teacher_logits, self.temperature)
        return logits, ce + kd, {"ce": ce.detach(), "kd": kd.detach()}
