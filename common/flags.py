"""The flags every script shares, declared without importing torch.

Every script of the study takes ``--profile --dataset --data-dir --device --seed --compile
--train-step --jobs --deterministic --no-progress --set`` (``add_common_args``); a stage's script
builds its parser as a ``StageParser``, which tells a run of the study from a variant. Building a parser
imports nothing heavy, so ``--help`` of any script answers at once and the stage declaration
reads a script's defaults cheaply; ``common.cli.RunContext`` turns the parsed flags into the
run's profile, device and data. The names the flags choose from are plain constants here:
``common.train_step`` and ``common.data`` use (or check) them, so each is stated once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence

from common import errors, library_warnings
from common.profiles import OVERRIDABLE, OVERRIDES_ENV, PROFILES, parse_override

DEFAULT_SEED = 0   # every script's --seed unless given (run_all passes none)
STEP_MODES = ("auto", "eager", "graphed")     # common.train_step's modes of a training step
DATASET_NAMES = ("cifar10", "cifar100")       # the datasets of common.data.DATASETS


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose every error is one line, ``error: <flag>: <value and what it
    may be>; <prog> --help lists the flags`` (exit status 2, nothing run), and which reads
    environment variables by the same rule as flags (``parse_with_environment``): a value from
    the environment is checked by the flag's own type and choices, and its error names the
    variable."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        errors.install()      # a UserError of the program it parses for is one line too
        library_warnings.install()    # and the libraries' known, harmless warnings are not shown
        self.from_environment: dict[str, str] = {}     # flag -> the variable its value came from

    def error(self, message: str):
        for flag, variable in self.from_environment.items():
            head = f"argument {flag}:"
            if message.startswith(head):
                message = f"{variable}={os.environ.get(variable, '')!r} (environment variable for {flag}):" \
                          f"{message[len(head):]}"
        self.exit(2, f"error: {message}; {self.prog} --help lists the flags\n")

    def parse_with_environment(self, args: Sequence[str] | None, environment: Mapping[str, str]) -> argparse.Namespace:
        """Parse ``args`` (default ``sys.argv[1:]``) after the flags that the set environment
        variables of ``environment`` (variable -> flag) stand for, so both pass the same checks;
        a flag given on the command line wins over its variable. A switch's variable (a flag
        taking no value) is ``1`` (on) or ``0``/empty (off)."""
        args = list(sys.argv[1:] if args is None else args)
        given = {a.split("=", 1)[0] for a in args if a.startswith("--")}
        front: list[str] = []
        for variable, flag in environment.items():
            value = os.environ.get(variable)
            if not value or flag in given:
                continue
            self.from_environment[flag] = variable
            if self._option_string_actions[flag].nargs == 0:
                if value not in ("0", "1"):
                    self.error(f"argument {flag}: {value!r} is neither 1 (on) nor 0 (off)")
                front += [flag] if value == "1" else []
            else:
                front.append(f"{flag}={value}")
        return self.parse_args(front + args)


def fraction(text: str) -> float:
    """argparse type: a finite number in [0, 1) (a sparsity, a share of parameters removed)."""
    value = _finite(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1), e.g. 0.7 for 70%")
    return value


def fraction_up_to(highest: float):
    """argparse type: a fraction in [0, ``highest``] (``highest`` < 1: the largest value that can be
    reached, e.g. a sweep's largest ratio)."""
    def check(text: str) -> float:
        value = _finite(text)
        if not 0 <= value <= highest:
            raise argparse.ArgumentTypeError(f"{text} is outside [0, {highest:g}], the range it can reach")
        return value
    check.__name__ = "fraction"
    return check


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (epochs, workers, steps)."""
    value = _converted(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def count(text: str) -> int:
    """argparse type: an integer >= 0 (GPUs per job: 0 for CPU jobs)."""
    value = _converted(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _finite(text: str) -> float:
    value = _converted(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _converted(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def device_name(text: str) -> str:
    """argparse type: 'auto', or a device torch can use on this machine (cpu, cuda, cuda:N, mps).

    'auto' (also the default, which argparse passes through this type) is accepted without
    importing torch; any other name imports it to ask what this machine has."""
    if text == "auto":
        return text
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    usable = {"cpu": True, "cuda": torch.cuda.is_available(),
              "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not usable.get(device.type, False):
        raise argparse.ArgumentTypeError(f"{text}: torch cannot use this device here; use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} GPU(s)")
    return text


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the shared flags to ``parser`` and return it; an error a user causes is one line from here on."""
    errors.install()
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="smoke | cpu | full (default: full with CUDA, else cpu)")
    parser.add_argument("--dataset", choices=sorted(DATASET_NAMES), default="cifar100",
                        help="cifar100 (default) | cifar10; the number of classes follows")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding cifar-100-python/ or cifar-10-batches-py/ "
                             "(default: $CIFAR_DIR, else ./data)")
    parser.add_argument("--device", type=device_name, default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the initial weights, data order and augmentation (default 0)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile models for training (trains with the eager step)")
    parser.add_argument("--train-step", choices=STEP_MODES, default="auto",
                        help="how a training step runs: graphed (recorded once as a CUDA graph), eager, "
                             "or auto (graphed on CUDA, eager elsewhere)")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="worker processes for independent trainings (students, seeds, baselines); "
                             "default: 2 per GPU on CUDA, 1 elsewhere")
    parser.add_argument("--deterministic", action="store_true",
                        help="CUDA: deterministic kernels only (slower; common.numerics says what differs "
                             "without it). CPU trainings are deterministic for a given thread count anyway")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they are shown only on a terminal anyway; epoch summaries are printed)")
    parser.add_argument("--tensorboard", default=None, metavar="DIR",
                        help="also write every training's epochs as TensorBoard scalars under DIR/<training>/ "
                             "(needs pip install tensorboard)")
    return add_variant_args(parser)


def add_variant_args(parser: argparse.ArgumentParser, variant: str | None = None) -> argparse.ArgumentParser:
    """Add ``--set KEY=VALUE...`` (profile values for this run) and ``--variant NAME`` (default
    ``variant``) to ``parser`` and return it: the flags that make a run a variant, for every
    script, the runner and the report builder alike (``common.profiles.run_profile`` reads them)."""
    parser.add_argument("--set", nargs="+", type=parse_override, default=[], metavar="KEY=VALUE",
                        help=f"change profile values for this run, e.g. --set student_epochs=20 lr=0.05 (also "
                             f"${OVERRIDES_ENV}); keys: {', '.join(OVERRIDABLE)}. The run is a variant: its "
                             "results and checkpoints go to a folder named after what changed")
    parser.add_argument("--variant", type=variant_label, default=variant, metavar="NAME",
                        help="name this run's variant: its results and checkpoints go to <dataset>-<profile>+NAME/ "
                             "(default: a run whose flags or --set values differ from the study's is named after them)")
    return parser


def variant_label(text: str) -> str:
    """argparse type of ``--variant``: a name for a folder (letters, digits, ``._=,-``)."""
    if not text or not all(c.isalnum() or c in "._=,-" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: a variant's name uses letters, digits and . _ = , - only")
    return text


# Flags that change how a script runs, not what it computes: everything else a stage's script is
# given with another value than its default makes the run a variant (``StageParser``).
OPERATIONAL = frozenset({"help", "profile", "dataset", "data_dir", "device", "jobs", "no_progress", "set",
                         "variant", "tensorboard", "compile", "train_step", "deterministic", "force"})


class StageParser(Parser):
    """The command line of a stage's script. Run with no flags, a script does what the study does
    (its defaults are the study's); after parsing, ``work_flags`` holds every flag given with a
    value other than its default that changes what it computes (all but ``OPERATIONAL``), and
    ``common.cli.RunContext`` makes such a run a variant with its own results and checkpoint
    folders (``common.profiles.Profile.varied``), so it never writes over the study's."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.work_flags = {a.dest: getattr(namespace, a.dest) for a in self._actions
                                if a.dest not in OPERATIONAL and hasattr(namespace, a.dest)
                                and getattr(namespace, a.dest) != a.default}
        return namespace, extras
