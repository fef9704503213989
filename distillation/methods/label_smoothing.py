"""Label smoothing (Szegedy et al. 2016): cross-entropy against softened one-hot targets.

A teacher-free control for distillation: like KD it trains on soft targets, but uniform ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillation.methods.base import Distiller, LossParts


class LabelSmoothing(Distiller):
    """CE with targets ``(1 - epsilon) * one_hot + epsilon / C``; no teacher needed.

    ``epsilon=0.1`` is the value of Szegedy et al. (2016, on ImageNet) and the customary
    default on CIFAR-100.
    """

    needs_teacher = False

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None,
                 total_steps: int | None = None, *, epsilon: float = 0.1):
        super().__init__(student, teacher, total_steps)
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """Logits [B,C], the label-smoothed CE and {"ce_ls": that loss}."""
        logits = self.student(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.epsilon)
        return logits, loss, {"ce_ls": loss.detach()}
