"""The names the distillation study's command lines choose from, as plain strings (no torch).

A script's ``--help`` and the stage declaration read them without building a model;
``distillation.methods.METHODS`` registers its classes under ``METHOD_NAMES`` and
``distillation.study`` builds ``STUDENTS`` from ``STUDENT_METHODS`` (and re-exports the teachers).
"""

from __future__ import annotations

from common.architectures import VGG_STAGES

TEACHER = "vgg16"
TEACHERS = tuple(sorted(VGG_STAGES))   # every baseline architecture can teach

# The distillation methods of distillation.methods.METHODS, in its order.
METHOD_NAMES = ("independent", "label_smoothing", "kd", "dkd", "hints", "crd")

# The students of the main comparison: name -> the method it trains with. The six methods as
# published, and "dkd_tuned": DKD with the settings of distillation.study.DKD_GRID that reach the
# best validation top-1.
TUNED_DKD = "dkd_tuned"
STUDENT_METHODS: dict[str, str] = {**{m: m for m in METHOD_NAMES}, TUNED_DKD: "dkd"}

STUDY_SEEDS = (0, 1, 2)   # the students' seeds in the study (mean and std); the smoke profile trains --seed only


def student_seeds(seeds: list[int] | None, seed: int, profile: str) -> list[int]:
    """The seeds distillation/01 trains: ``seeds`` when given (``--seeds``), else the study's:
    ``STUDY_SEEDS``, or ``[seed]`` on the ``smoke`` study profile (``profile``)."""
    if seeds:
        return list(seeds)
    return [seed] if profile == "smoke" else list(STUDY_SEEDS)
