"""The independent student S_I: the student trained alone with plain cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distillation.methods.base import Distiller, LossParts


class Independent(Distiller):
    """Cross-entropy only; no teacher is needed (one, if given, is held frozen and unused).

    The reference every distillation method is compared with.
    """

    needs_teacher = False

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """Logits [B,C], ``CE(student(x), y)`` and {"ce": that loss}."""
        logits = self.student(x)
        ce = F.cross_entropy(logits, y)
        return logits, ce, {"ce": ce.detach()}
