"""The profile table: one place that sets how big every experiment of the study is.

A profile fixes the model width, how much data is used, and the training recipe, so that the
same scripts produce a smoke test (seconds), a real CPU study (hours on 2 cores) or the paper
numbers (one GPU). Outputs of different profiles never mix: they go to
``results/<dataset>-<profile>/`` and ``checkpoints/<dataset>-<profile>/``.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import asdict, dataclass, fields, replace


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
    base: str = ""               # a variant's study profile (smoke | cpu | full); "" for those themselves

    def as_dict(self) -> dict:
        """The profile as a plain dict (for provenance JSON and checkpoint metadata)."""
        return asdict(self)

    @property
    def study_name(self) -> str:
        """The study profile this one is, or is a variant of: 'smoke', 'cpu' or 'full'."""
        return self.base or self.name

    def varied(self, overrides: dict | None = None, flags: dict | None = None, label: str | None = None
               ) -> "Profile":
        """This profile with ``overrides`` (profile values: ``--set``) applied, as a variant
        named ``label`` (``--variant``) or else after every value that differs from the study's
        and every work flag of a script (``flags``, its dest -> value), e.g.
        ``cpu+lr=0.05+student_epochs=20`` or ``cpu+methods=kd,independent``: its results and
        checkpoints go to a folder of that name, never into the study's. Without a label or a
        difference it is this profile itself."""
        changed = {k: v for k, v in (overrides or {}).items() if getattr(self, k) != v}
        parts = {k: _as_text(v) for k, v in changed.items()}
        for dest, value in (flags or {}).items():
            parts[f"flag.{dest}" if dest in parts or dest in OVERRIDABLE else dest] = _as_text(value)
        if label:
            name = f"{self.study_name}+{label}"
        elif parts:
            name = self.study_name + "".join(f"+{k}={v}" for k, v in sorted(parts.items()))
        else:
            return self
        return replace(self, name=name, base=self.study_name, **changed)


def _as_text(value) -> str:
    """A value as it reads in a variant's folder name: lists joined by commas, None 'all'."""
    if isinstance(value, (list, tuple)):
        return ",".join(_as_text(v) for v in value)
    if value is None:
        return "all"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return (f"{value:g}" if isinstance(value, float) else str(value)).replace("/", "_").replace(" ", "_")


def _count(minimum: int, allow_all: bool = False):
    def check(text: str):
        if allow_all and text in ("all", "none", "None"):
            return None
        value = int(text)
        if value < minimum:
            raise ValueError(f"at least {minimum}")
        return value
    return check, f"an integer >= {minimum}" + (" or 'all'" if allow_all else "")


def _number(low: float, high: float = math.inf, low_open: bool = True):
    def check(text: str):
        value = float(text)
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise ValueError("out of range")
        return value
    bound = f"> {low:g}" if low_open else f">= {low:g}"
    return check, f"a number {bound}" + (f" and <= {high:g}" if math.isfinite(high) else "")


# Every profile value ``--set key=value`` may change for one run: key -> (parse and check, the rule).
OVERRIDABLE: dict[str, tuple] = {
    "width": _number(0.0, 4.0), "train_images": _count(1, allow_all=True), "val_images": _count(1),
    "test_images": _count(1, allow_all=True), "epochs": _count(1), "batch_size": _count(1),
    "lr": _number(0.0), "weight_decay": _number(0.0, low_open=False), "finetune_epochs": _count(1),
    "student_epochs": _count(1),
}
assert set(OVERRIDABLE) == {f.name for f in fields(Profile)} - {"name", "base"}, "every profile value has a rule"
OVERRIDES_ENV = "OVERRIDES"   # the same key=value pairs from the environment, space-separated


def parse_override(text: str) -> tuple[str, object]:
    """argparse type of ``--set``: ``key=value`` -> (key, value of the profile field's type).
    An unknown key, a value of the wrong type or out of range raises ArgumentTypeError naming
    the valid keys, or the key's range."""
    key, sep, value = text.partition("=")
    if not sep or key not in OVERRIDABLE:
        raise argparse.ArgumentTypeError(f"{text!r}: set a profile value as key=value, one of: "
                                         f"{', '.join(OVERRIDABLE)}")
    check, rule = OVERRIDABLE[key]
    try:
        return key, check(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {key} must be {rule}") from None


def override_text(key: str, value) -> str:
    """``key=value`` as ``--set`` reads it back (``parse_override``)."""
    return f"{key}={'all' if value is None else value}"


def environment_overrides() -> list[tuple[str, object]]:
    """The ``--set`` pairs of ``$OVERRIDES`` (space-separated key=value; checked as ``--set``)."""
    return [parse_override(item) for item in os.environ.get(OVERRIDES_ENV, "").split()]


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


def run_profile(args: argparse.Namespace, announce: bool = True) -> Profile:
    """The profile a script runs under, from its parsed flags: ``--profile`` (or the default), with
    ``$OVERRIDES`` then ``--set`` applied and the script's work flags (``common.flags.StageParser``)
    named, as ``Profile.varied`` makes a variant of them. A bad ``$OVERRIDES`` is one line (UserError)."""
    from common.errors import UserError

    try:
        overrides = dict(environment_overrides())
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"${OVERRIDES_ENV}: {exc}") from None
    overrides.update(dict(getattr(args, "set", None) or []))
    profile = get_profile(args.profile, announce=announce).varied(overrides, getattr(args, "work_flags", None),
                                                                  getattr(args, "variant", None))
    if announce and profile.base:
        print(f"[profile] {profile.name}: a variant of {profile.base}, with its own results and checkpoint folders")
    return profile
