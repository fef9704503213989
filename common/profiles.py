"""The profile table: one place that sets how big every experiment of the study is.

A profile fixes the model width, how much data is used, and the training recipe, so that the
same scripts produce a smoke test (seconds), a real CPU study (hours on 2 cores) or the paper
numbers (one GPU). Outputs of different profiles never mix: they go to
``results/<dataset>-<profile>/`` and ``checkpoints/<dataset>-<profile>/``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """How big the study is. Epoch counts are full passes over the training subset."""

    name: str
    width: float                 # channel-width multiplier applied to every VGG
    train_images: int | None     # training images used (None: all, minus the validation split)
    val_images: int              # held-out validation images carved from train (seeded)
    test_images: int | None      # test images evaluated (None: the whole test split)
    epochs: int                  # baselines and teachers
    batch_size: int
    lr: float                    # peak learning rate of the one-cycle schedule (SGD, nesterov)
    weight_decay: float
    finetune_epochs: int         # short fine-tunes (pruning recovery, QAT, colour-jitter teacher)
    student_epochs: int          # distillation students, and the independent student S_I

    def as_dict(self) -> dict:
        """The profile as a plain dict (for provenance JSON and checkpoint metadata)."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    # Tests, CI and a first look: a tiny network on a few hundred images, one epoch.
    "smoke": Profile(
        name="smoke", width=0.125, train_images=512, val_images=128, test_images=256,
        epochs=1, batch_size=64, lr=0.05, weight_decay=5e-4,
        finetune_epochs=1, student_epochs=1,
    ),
    # A real study on a 2-core CPU: half-width VGGs on the whole dataset. Calibrated so that each
    # task study fits in an hour or two (combined/README.md has the measured costs).
    "cpu": Profile(
        name="cpu", width=0.5, train_images=None, val_images=5000, test_images=None,
        epochs=15, batch_size=128, lr=0.1, weight_decay=5e-4,
        finetune_epochs=3, student_epochs=10,
    ),
    # The paper numbers on one GPU: full-width VGGs and a schedule long enough to reach the
    # published CIFAR VGG-BN anchors (combined/README.md, "The `full` recipe").
    "full": Profile(
        name="full", width=1.0, train_images=None, val_images=5000, test_images=None,
        epochs=120, batch_size=128, lr=0.1, weight_decay=5e-4,
        finetune_epochs=10, student_epochs=60,
    ),
}


PROFILE_ORIGIN = "STUDY_PROFILE_ORIGIN"   # set by the runner when it chose the profile for the stages


def default_profile_name() -> str:
    """``'full'`` when CUDA is available, else ``'cpu'`` (DESIGN.md)."""
    import torch   # here, not at the top: the shared flags read PROFILES without torch

    return "full" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None, announce: bool = True) -> Profile:
    """Return the named profile (or the default one) and print which was chosen.

    Raises ValueError naming the valid profiles for an unknown name.
    """
    chosen = name or default_profile_name()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}; choose one of {sorted(PROFILES)}")
    if announce:
        how = (os.environ.get(PROFILE_ORIGIN, "requested") if name
               else "default (CUDA available)" if chosen == "full" else "default (no CUDA)")
        print(f"[profile] {chosen} ({how})")
    return PROFILES[chosen]
