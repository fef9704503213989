"""The flags every script shares, and the run context they resolve to.

Every script of the study takes ``--profile --dataset --data-dir --device --seed --compile
--no-progress``; ``RunContext`` turns them into the profile, the device, the data (loaded once,
kept on the device), the results folder and the provenance of this run. The flags themselves are
declared, without torch, in ``common.flags``, so a script's ``--help`` needs none of this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from common.cache import KEY, artefact_key, cached_model, reusable
from common.checkpoints import checkpoint_path
from common.code import code_sha256
from common.curves import TENSORBOARD_DIR
from common.data import CifarSplits, DatasetNotFoundError, ensure_dataset, load_splits, resolve_data_dir, split_key
from common.profiles import Profile, run_profile
from common.paths import checkpoints_root, results_root, run_folder, writable_folder
from common.results import provenance, read_rows, read_sidecar, results_dir, write_results
from common.jobs import default_jobs
from common.numerics import numerics_settings, set_numerics
from common.training import evaluate, module_device


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name} asked for CUDA, but torch sees no GPU; use --device cpu")
    return device


SPLIT_FIELDS = ("profile", "dataset", "data_dir", "device")   # what RunContext.splits depends on


@dataclass
class RunContext:
    """What a script needs to know about this run."""

    profile: Profile
    dataset: str
    data_dir: Path
    device: torch.device
    seed: int = 0
    compile: bool = False
    progress: bool = True
    train_step: str = "auto"      # common.train_step mode of every training of this run
    jobs: int = 1                 # worker processes for independent trainings (common.jobs)
    deterministic: bool = False   # deterministic CUDA kernels only (common.numerics)
    started: float = field(default_factory=time.time)
    _copies: dict = field(default_factory=dict, repr=False)   # splits copied to other devices

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunContext":
        """Build the context from flags parsed with ``add_common_args``."""
        if args.compile and args.train_step == "graphed":
            raise SystemExit("error: --compile cannot be combined with --train-step graphed (the CUDA "
                             "graph records the uncompiled model); drop one of them")
        numerics = set_numerics(args.deterministic)   # before any CUDA kernel: fp32 is IEEE fp32
        if getattr(args, "tensorboard", None):      # every fit of this run (and of its workers) logs there
            os.environ[TENSORBOARD_DIR] = str(Path(args.tensorboard).resolve())
        device = resolve_device(args.device)
        jobs = default_jobs(device) if args.jobs is None else args.jobs
        if jobs < 1:
            raise SystemExit(f"error: --jobs must be at least 1, got {jobs}")
        ctx = cls(profile=run_profile(args), dataset=args.dataset,
                  data_dir=resolve_data_dir(args.data_dir), device=device, seed=args.seed,
                  compile=args.compile, progress=not args.no_progress and sys.stderr.isatty(),
                  train_step=args.train_step,
                  jobs=jobs, deterministic=numerics["deterministic"])
        run = run_folder(ctx.dataset, ctx.profile.name)    # folders it cannot write: one line, before any work
        writable_folder(results_root() / run, "results folder", "RESULTS_DIR")
        writable_folder(checkpoints_root() / run, "checkpoints folder", "CHECKPOINT_DIR")
        try:   # so is a missing dataset
            ensure_dataset(ctx.dataset, ctx.data_dir)
        except DatasetNotFoundError as exc:
            raise SystemExit(f"error: {exc}") from None
        print(f"[run] dataset={ctx.dataset} device={ctx.device} data={ctx.data_dir}")
        return ctx

    @cached_property
    def splits(self) -> CifarSplits:
        """Train/val/test of this run's dataset, capped by the profile, on the run's device."""
        p = self.profile
        return load_splits(self.dataset, self.data_dir, val_images=p.val_images,
                           train_images=p.train_images, test_images=p.test_images).to(self.device)

    @property
    def data_key(self) -> dict:
        """What decides this run's splits (``common.data.split_key``: the data files' sha256, the
        profile's split sizes), without loading them: the data part of every cache key."""
        p = self.profile
        return split_key(self.dataset, self.data_dir, p.val_images, p.train_images, p.test_images)

    def artefact_key(self, settings: dict, inputs: dict[str, str] | None = None, code_of: str = "") -> dict:
        """The key (``common.cache.artefact_key``) of an artefact made in this run from
        ``settings``, the ``inputs`` weights (role -> sha256) and the code of module ``code_of``."""
        return artefact_key(settings, self.data_key, inputs, code_sha256(code_of) if code_of else "")

    def checkpoint(self, name: str) -> Path:
        """``checkpoints/<dataset>-<profile>/<name>.pt``: where this run caches checkpoint ``name``."""
        return checkpoint_path(self.dataset, self.profile.name, name)

    def cached_checkpoint(self, name: str, key: dict) -> tuple[torch.nn.Module, dict] | None:
        """Checkpoint ``name`` of this run as ``(model on the run's device, eval mode; meta)`` when
        its key is ``key`` (``common.cache.cached_model``), else None (the caller trains it). A
        variant that has not made it yet first looks at its study profile's checkpoint of that
        name: a variant changes only what it changes (a ``student_epochs`` variant's teachers are
        the study's), and the key says whether it did."""
        path = self.checkpoint(name)
        if path.exists() or not self.profile.base:
            return cached_model(path, name, key, self.dataset, self.profile.name, self.device)
        study = checkpoint_path(self.dataset, self.profile.base, name)
        return cached_model(study, name, key, self.dataset, self.profile.base, self.device)

    def resume_file(self, desc: str) -> Path:
        """Where an uncached training labelled ``desc`` (a fine-tune, a QAT run) keeps its state
        between epochs: ``checkpoints/<dataset>-<profile>/resume/<desc>.resume.pt``."""
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in desc)
        return checkpoints_root() / run_folder(self.dataset, self.profile.name) / "resume" / f"{name}.resume.pt"

    def but(self, **changes) -> "RunContext":
        """This run with some fields changed (e.g. ``seed``, ``train_step``); it shares the loaded
        data unless a field the splits depend on (``SPLIT_FIELDS``) changes."""
        other = dataclasses.replace(self, **changes)
        if "splits" in self.__dict__ and not set(changes) & set(SPLIT_FIELDS):
            other.__dict__["splits"] = self.splits
        return other

    def evaluate(self, model: torch.nn.Module, split: str = "test") -> dict:
        """Top-1/top-5 (%) of ``model`` on this run's ``split`` ('val' for every tuned choice,
        'test' for what is reported), computed on the model's own device: a CPU-only backend's
        model (PT2E int8) in a GPU run is evaluated on a CPU copy of the split."""
        images, labels = self.split_on(split, module_device(model))
        return evaluate(model, images, labels, self.dataset)

    def split_on(self, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images [N,3,32,32], labels [N]) of ``split`` on ``device`` (copied once, cached)."""
        images, labels = self.splits.split(split)
        if images.device == device:
            return images, labels
        key = (split, str(device))
        if key not in self._copies:
            self._copies[key] = (images.to(device), labels.to(device))
        return self._copies[key]

    def results_dir(self, task: str) -> Path:
        """``results/<dataset>-<profile>/<task>/``, created."""
        return results_dir(self.dataset, self.profile.name, task)

    def stored_rows(self, task: str, filename: str, key: dict, verb: str = "recomputing") -> list[dict] | None:
        """Rows of ``results/<dataset>-<profile>/<task>/<filename>`` when its sidecar's key is
        ``key`` (``common.cache.reusable``, code included), else None (one line says why)."""
        path = self.results_dir(task) / filename
        rows = read_rows(path)
        if rows and reusable(filename, read_sidecar(path).get(KEY), key, verb=verb, code_decides=True):
            print(f"[cache] {filename}: reusing {path}")
            return rows
        return None

    def cached_rows(self, task: str, filename: str, compute: Callable[[], list[dict]], key: dict,
                    **extra) -> list[dict]:
        """This stage's own results file ``<task>/<filename>``: its rows when they were made under
        ``key`` (``stored_rows``), else ``compute()``, written with provenance, ``key`` and
        ``extra``, and returned."""
        rows = self.stored_rows(task, filename, key)
        if rows is None:
            rows = compute()
            write_results(rows, self.results_dir(task) / filename, self.provenance(**{KEY: key}, **extra))
        return rows

    def provenance(self, **extra) -> dict:
        """Provenance for a results file written now."""
        return provenance(self.profile.name, self.dataset, self.seed, self.device, self.started,
                          profile_settings=self.profile.as_dict(), data=self.data_key,
                          numerics=numerics_settings(), **extra)
