"""The interface every distillation method implements: a ``Distiller`` module around a student.

A ``Distiller`` holds the trainable student, an optional frozen teacher and any extra heads a
method trains (regressors, projection heads). Called with images only it is the student, so the
shared evaluation code works on it unchanged; called with images and labels it returns the
training loss. ``loss_fn()`` plugs it into ``common.training.fit``; because the loss is computed
in ``forward``, a ``torch.compile``'d Distiller compiles the loss too. Adding a method is one new
file: subclass ``Distiller``, implement ``compute_losses`` and register the class in
``distillation.methods.METHODS``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from common.training import LossFn

LossParts = dict[str, torch.Tensor]


def stage_channels(model: nn.Module, stage: int) -> int:
    """Channels C_s of a VGG's stage-``stage`` feature map (its last conv's width)."""
    return int(model.config["stage_channels"][stage][-1])


class Distiller(nn.Module):
    """A student (trainable), an optional teacher (frozen, always in eval mode) and a loss.

    ``student`` and ``teacher`` are ``common.models.VGG``-like: ``forward(x) -> logits [B,C]``
    and ``forward_with_features(x) -> (logits, 5 stage maps)``. The teacher runs under
    ``no_grad``, is never among ``trainable_parameters()`` and stays in eval mode whatever
    ``train()`` is called with, so its weights and BatchNorm statistics never change. Its
    ``requires_grad`` flags are left as they were: the teacher is often a shared, cached baseline
    that later code (e.g. Grad-CAM) needs gradients through.

    ``total_steps`` (optimizer steps of the whole run; ``fit`` takes
    ``epochs * max(1, train_images // batch_size)``) gives methods a schedule: every training
    call of ``forward_train`` adds one to the ``steps_done`` buffer, and ``progress()`` is the
    fraction of training done. None means no schedule.
    """

    needs_teacher: ClassVar[bool] = True

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None,
                 total_steps: int | None = None):
        super().__init__()
        if self.needs_teacher and teacher is None:
            raise ValueError(f"{type(self).__name__} needs a teacher")
        if total_steps is not None and total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.eval()
        self.total_steps = total_steps
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> "Distiller":
        """Set the student and heads to ``mode``; the teacher stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """Images [B,3,32,32] -> student logits [B,C]; with labels y [B], ``forward_train(x, y)``."""
        if y is None:
            return self.student(x)
        return self.forward_train(x, y)

    def forward_train(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """(student logits [B,C], scalar loss, detached loss parts that sum to the loss).

        Counts one step in ``steps_done`` when the module is in training mode.
        """
        if self.training:
            self.steps_done.add_(1)
        return self.compute_losses(x, y)

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """The method's loss on images x [B,3,32,32] and labels y [B]; see ``forward_train``."""
        raise NotImplementedError

    def progress(self) -> torch.Tensor | None:
        """Fraction of training done, ``steps_done / total_steps`` in [0,1] (0-d float tensor);
        None without ``total_steps``."""
        if self.total_steps is None:
            return None
        return (self.steps_done / self.total_steps).clamp(0.0, 1.0)

    def teacher_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Teacher logits [B,C] and its 5 stage maps, without gradients."""
        with torch.no_grad():
            return self.teacher.forward_with_features(x)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The student's parameters and those of the method's heads; never the teacher's."""
        return [p for name, p in self.named_parameters() if not name.startswith("teacher.")]

    @staticmethod
    def loss_fn() -> LossFn:
        """A ``fit``-compatible ``loss_fn(model, x, y) -> (logits, loss)`` for a Distiller
        (or a ``torch.compile``'d one)."""
        return distiller_loss


def distiller_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``fit``'s loss for a Distiller ``model``: (student logits [B,C], scalar training loss)."""
    logits, loss, _ = model(x, y)
    return logits, loss
