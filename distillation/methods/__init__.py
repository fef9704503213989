"""Distillation methods behind one interface (``Distiller``), and a registry to build them by name."""

from __future__ import annotations

from torch import nn

from distillation.methods.base import Distiller, distiller_loss, stage_channels
from distillation.methods.crd import CRD, crd_queue_size
from distillation.methods.dkd import DKD
from distillation.methods.hints import Hints, hint_regressor
from distillation.methods.independent import Independent
from distillation.methods.kd import KD
from distillation.methods.label_smoothing import LabelSmoothing
from distillation.names import METHOD_NAMES

# The registry: each class under its name in distillation.names.METHOD_NAMES (declared there,
# without torch, for the command lines), in that order.
METHODS: dict[str, type[Distiller]] = dict(zip(METHOD_NAMES, (
    Independent,        # independent
    LabelSmoothing,     # label_smoothing
    KD,                 # kd
    DKD,                # dkd
    Hints,              # hints
    CRD,                # crd
), strict=True))


def build_distiller(name: str, student: nn.Module, teacher: nn.Module | None = None,
                    total_steps: int | None = None, **hparams) -> Distiller:
    """The registered method ``name`` around ``student`` (and ``teacher``), with ``hparams``
    overriding its published defaults.

    Raises ValueError for an unknown name (listing the valid ones) and when a method that needs
    a teacher gets none.
    """
    if name not in METHODS:
        raise ValueError(f"unknown distillation method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name](student, teacher, total_steps, **hparams)  # Distiller checks the teacher


__all__ = ["CRD", "DKD", "Distiller", "Hints", "Independent", "KD", "LabelSmoothing", "METHODS",
           "build_distiller", "crd_queue_size", "distiller_loss", "hint_regressor",
           "stage_channels"]
