"""FitNets hints (Romero et al. 2015), trained jointly with the classification loss.

This is the joint schedule of mdistiller and RepDistiller: one stage, ``CE + weight * MSE``
between a regressed student stage map and the teacher's. Romero et al. instead train the
regressor and the lower student layers on the hint alone first, then the whole student with KD;
that two-stage schedule is not implemented here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillation.methods.base import Distiller, LossParts, stage_channels


def hint_regressor(student_channels: int, teacher_channels: int, kernel_size: int = 3) -> nn.Module:
    """Conv (kernel_size, same padding, no bias) -> BatchNorm2d -> ReLU:
    [B,C_student,H,W] -> [B,C_teacher,H,W].

    The ReLU matches the teacher's post-ReLU stage maps. ``kernel_size=1`` is what mdistiller's
    ``ConvReg`` uses when the two maps have the same spatial size.
    """
    return nn.Sequential(
        nn.Conv2d(student_channels, teacher_channels, kernel_size, padding=kernel_size // 2,
                  bias=False),
        nn.BatchNorm2d(teacher_channels),
        nn.ReLU(inplace=True),
    )


class Hints(Distiller):
    """``ce_weight * CE + hint_weight * MSE(regressor(student stage s), teacher stage s)``.

    The MSE is the mean over all elements of the [B,C_t,H,W] maps. Defaults are mdistiller's
    CIFAR-100 FitNet settings (hint layer 2, feature weight 100, CE weight 1); stage
    ``hint_stage`` is the output of VGG stage s (0..4), of the same spatial size in student
    and teacher.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None,
                 total_steps: int | None = None, *, hint_stage: int = 2,
                 hint_weight: float = 100.0, ce_weight: float = 1.0):
        super().__init__(student, teacher, total_steps)
        stages = len(student.config["stage_channels"])
        if not 0 <= hint_stage < stages:
            raise ValueError(f"hint_stage must be in 0..{stages - 1}, got {hint_stage}")
        self.hint_stage = hint_stage
        self.hint_weight = hint_weight
        self.ce_weight = ce_weight
        self.regressor = hint_regressor(stage_channels(student, hint_stage),
                                        stage_channels(teacher, hint_stage))

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """Logits [B,C], the weighted loss and its parts {"ce", "hint"} (weights applied)."""
        logits, features = self.student.forward_with_features(x)
        _, teacher_features = self.teacher_outputs(x)
        ce = self.ce_weight * F.cross_entropy(logits, y)
        guided = self.regressor(features[self.hint_stage])
        hint = self.hint_weight * F.mse_loss(guided.float(),
                                             teacher_features[self.hint_stage].float())
        return logits, ce + hint, {"ce": ce.detach(), "hint": hint.detach()}
