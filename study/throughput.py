"""Throughput figures for the cost plan (``study.plan``): read from a CSV, or measured here.

A figure is images per second of one kind of pass, at one width and batch size, on one device:

- training, keyed by (model, teacher, variant): ``variant`` is ``plain`` (``fit`` with
  cross-entropy or a distillation loss), ``fake-quant`` (``fit`` through the study's
  fake-quantizers, eager; measured with W4A4 on every layer, the heaviest format the study trains)
  or ``pt2e-qat`` (torchao's PT2E int8 QAT graph, fp32, eager); ``teacher`` is ``none`` or the
  teacher's architecture, whose forward runs in every step (logit matching, as
  ``distillation.methods.KD`` does);
- inference, keyed by (model, variant): ``plain`` is ``predict_logits`` (fp32, eval mode, batches
  of 1000, as every evaluation of the study), ``fake-quant`` the same through a W4A4 copy.

CSV columns: ``model, width, batch_size, train_images_per_second`` and optionally ``teacher``
(absent or empty: none), ``variant`` (absent or empty: plain) and ``infer_images_per_second``.
``study.device_check``'s ``throughput.csv`` (plain training of VGG-11/16/19) is such a file; its
``step`` column (how a step executes, ``common.train_step``) picks the rows of the mode a run
uses on that device ('auto': graphed on CUDA, eager elsewhere), and its rows of concurrent
processes (``concurrent`` True) are left out of the figures: ``concurrency_speedup`` reads them.

A figure that is not in the table is estimated from those that are, and says so (``Figure.note``):
a step with a teacher costs the student's plain step plus the teacher's forward; a forward with
no inference figure is priced as a training step (an upper bound); a fake-quant or PT2E step with
no figure of its own is priced as a plain step (an underestimate). The channel-pruned VGG-11 is
priced with VGG-11's figures (an approximation either way: it has fewer FLOPs, but channel counts
that suit vector kernels less well, so its steps are not proportionally faster and can be slower)
and the colour-jitter teacher with its architecture's. A model with no training figure at all is
an error (``MissingThroughput``), never a guess.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from common.results import read_rows, read_sidecar

VARIANTS = ("plain", "fake-quant", "pt2e-qat")
from study.work import CHANNEL_PRUNED, COLOUR_SUFFIX, NO_TEACHER  # noqa: E402  (names of the priced models)
REQUIRED_COLUMNS = ("model", "width", "batch_size", "train_images_per_second")


class MissingThroughput(ValueError):
    """A figure the plan needs is neither in the table nor estimable from it (one-line message)."""


def architecture(model: str) -> str:
    """The architecture whose figures price ``model``: the channel-pruned VGG-11 -> 'vgg11',
    'vgg16-colour' -> 'vgg16', a plain name -> itself."""
    if model == CHANNEL_PRUNED:
        return "vgg11"
    return model.removesuffix(COLOUR_SUFFIX)


@dataclass(frozen=True)
class Figure:
    """Images per second of one pass; ``note`` is empty when measured, else how it was estimated."""

    images_per_second: float
    note: str = ""

    @property
    def estimated(self) -> bool:
        return bool(self.note)


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


@dataclass
class ThroughputTable:
    """Measured figures (images/s) at one width and batch size, and where they come from."""

    source: str                       # a file path, or "measured now on <device>"
    device: str                       # the device the figures were measured on
    width: float
    batch_size: int
    train: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (model, teacher, variant)
    infer: dict[tuple[str, str], float] = field(default_factory=dict)       # (model, variant)

    def training(self, model: str, teacher: str = NO_TEACHER, variant: str = "plain") -> Figure:
        """Training images/s of ``model`` (with a ``teacher`` forward per step) as ``variant``."""
        arch, teacher_arch = architecture(model), architecture(teacher)
        priced_as = f"{model} priced as {arch}" if arch != model else ""
        key = (arch, teacher_arch, variant)
        if key in self.train:
            return Figure(self.train[key], priced_as)
        if variant != "plain":
            plain = self.training(arch, teacher_arch, "plain")
            return Figure(plain.images_per_second,
                          _joined(priced_as, plain.note,
                                  f"no {variant} figure: priced as a plain step (an underestimate)"))
        if teacher_arch == NO_TEACHER:
            raise MissingThroughput(
                f"no training throughput for {arch} at width {self.width:g}, batch {self.batch_size} in "
                f"{self.source} (it has: {', '.join(sorted({k[0] for k in self.train})) or 'nothing'}); "
                "add a row, or leave out --throughput to measure it on this machine")
        student = self.training(arch)
        teacher_forward = self.inference(teacher_arch)
        combined = 1.0 / (1.0 / student.images_per_second + 1.0 / teacher_forward.images_per_second)
        return Figure(combined, _joined(priced_as, student.note, teacher_forward.note,
                                        f"estimated: {arch} step + {teacher_arch} forward"))

    def inference(self, model: str, variant: str = "plain") -> Figure:
        """Evaluation images/s of ``model`` (fp32 forward; ``fake-quant``: through fake-quantizers)."""
        arch = architecture(model)
        priced_as = f"{model} priced as {arch}" if arch != model else ""
        if (arch, variant) in self.infer:
            return Figure(self.infer[(arch, variant)], priced_as)
        if variant != "plain":
            plain = self.inference(arch)
            return Figure(plain.images_per_second,
                          _joined(priced_as, plain.note,
                                  f"no {variant} inference figure: priced as plain (an underestimate)"))
        train = self.training(arch)
        return Figure(train.images_per_second,
                      _joined(priced_as, train.note, "estimated: a forward priced as a training step (an upper bound)"))

    def covers(self, train_keys, infer_keys) -> bool:
        """Whether every (model, teacher, variant) and (model, variant) key is measured, not estimated."""
        return (all((architecture(m), architecture(t), v) in self.train for m, t, v in train_keys)
                and all((architecture(m), v) in self.infer for m, v in infer_keys))

    def rows(self) -> list[dict]:
        """One CSV row per (model, teacher, variant), inference figures on the teacher-less rows."""
        keys = sorted(set(self.train) | {(model, NO_TEACHER, variant) for model, variant in self.infer})
        return [{"model": model, "width": self.width, "batch_size": self.batch_size, "teacher": teacher,
                 "variant": variant,
                 "train_images_per_second": round(self.train[(model, teacher, variant)], 1)
                 if (model, teacher, variant) in self.train else "",
                 "infer_images_per_second": round(self.infer[(model, variant)], 1)
                 if teacher == NO_TEACHER and (model, variant) in self.infer else ""}
                for model, teacher, variant in keys]


# ----------------------------------------------------------------------------- reading


def _number(row: dict, column: str) -> float | None:
    value = (row.get(column) or "").strip()
    return float(value) if value else None


def _one_process_in_the_run_mode(rows: list[dict], device: str) -> list[dict]:
    """Rows of one training process (``jobs`` empty or 1) and, where a ``step`` column records
    how steps executed (device_check: 'eager' | 'graphed'), of the mode a run uses on
    ``device`` ('auto': graphed on CUDA, else eager; any mode when that one is absent)."""
    from common.train_step import STEP_MODES, resolve_step_mode

    alone = [r for r in rows if (r.get("jobs") or "1").strip() in ("1", "1.0")
             and (r.get("concurrent") or "").strip() != "True"]
    modes = {(r.get("step") or "").strip() for r in alone} & set(STEP_MODES)
    if not modes:
        return alone
    wanted = resolve_step_mode("auto", "cuda" if device.startswith("cuda") else "cpu")
    return [r for r in alone if (r.get("step") or "").strip() in ({wanted} if wanted in modes else modes)]


def concurrency_speedup(path: str | Path, jobs: int) -> float | None:
    """How much more one device trains with ``jobs`` processes at once than with one: the
    aggregate training images/s of the concurrent rows (``concurrent`` True, as
    ``study.device_check`` writes them for VGG-11) with ``jobs`` == N over the one with
    ``jobs`` == 1. 1.0 for one job; None when the file has not both readings."""
    if jobs <= 1:
        return 1.0
    path = Path(path)
    if not path.exists():
        return None
    readings = {int(float(r["jobs"])): float(r["train_images_per_second"]) for r in read_rows(path)
                if (r.get("concurrent") or "").strip() == "True" and r.get("jobs")}
    return readings[jobs] / readings[1] if jobs in readings and 1 in readings else None


def read_throughput_csv(path: str | Path, width: float, batch_size: int,
                        device: str | None = None) -> ThroughputTable:
    """The figures of a throughput CSV at ``width`` and ``batch_size`` (other rows ignored).

    The device is the JSON sidecar's, else a ``device`` column's, else ``device``. Raises
    MissingThroughput (one line) for a missing file, a missing required column, an unknown
    variant, or no row at this width and batch size."""
    path = Path(path)
    if not path.exists():
        raise MissingThroughput(f"throughput file {path} does not exist")
    rows = read_rows(path)
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise MissingThroughput(f"throughput file {path} needs columns {', '.join(REQUIRED_COLUMNS)}"
                                + (f" (missing: {', '.join(missing)})" if missing else " and at least one row"))
    chosen = [r for r in rows if float(r["width"]) == width and int(float(r["batch_size"])) == batch_size]
    if not chosen:
        have = sorted({(float(r["width"]), int(float(r["batch_size"]))) for r in rows})
        raise MissingThroughput(f"throughput file {path} has no row at width {width:g}, batch {batch_size} "
                                f"(it has width/batch {', '.join(f'{w:g}/{b}' for w, b in have)})")
    recorded = read_sidecar(path).get("device") or chosen[0].get("device") or device or "unknown device"
    table = ThroughputTable(str(path), recorded, width, batch_size)
    for r in _one_process_in_the_run_mode(chosen, recorded):
        teacher = (r.get("teacher") or "").strip() or NO_TEACHER
        variant = (r.get("variant") or "").strip() or "plain"
        if variant not in VARIANTS:
            raise MissingThroughput(f"throughput file {path}: unknown variant {variant!r} "
                                    f"(use one of {', '.join(VARIANTS)})")
        train = _number(r, "train_images_per_second")
        if train:
            table.train[(r["model"], teacher, variant)] = train
        infer = _number(r, "infer_images_per_second")
        if infer and teacher == NO_TEACHER:
            table.infer[(r["model"], variant)] = infer
    return table


def read_cached(path: Path, device: str, width: float, batch_size: int) -> ThroughputTable | None:
    """The plan's own earlier measurement at ``path`` when it was taken on ``device`` (the
    sidecar's device description) at this width and batch size; else None."""
    if read_sidecar(path).get("device") != device:
        return None
    try:
        return read_throughput_csv(path, width, batch_size)
    except MissingThroughput:
        return None


# ----------------------------------------------------------------------------- measuring


def inference_images_per_second(ctx, model: torch.nn.Module, images: int) -> float:
    """Images/s of ``predict_logits`` (fp32, batches of 1000) on ``images`` validation images,
    after one untimed batch."""
    from common.timing import synchronize
    from common.training import predict_logits

    val = ctx.splits.val_images
    chosen = val[:min(images, len(val))]
    predict_logits(model, chosen[:1000], ctx.dataset)
    synchronize(ctx.device)
    start = time.perf_counter()
    predict_logits(model, chosen, ctx.dataset)
    synchronize(ctx.device)
    return len(chosen) / (time.perf_counter() - start)


def _fresh_model(ctx, name: str, width: float) -> torch.nn.Module:
    from common.data import num_classes
    from common.models import build_model

    torch.manual_seed(ctx.seed)
    return build_model(name, num_classes(ctx.dataset), width).to(ctx.device)


def _distillation_step(ctx, student: str, teacher: str, width: float, batch_size: int,
                       steps: int, warmup: int) -> float:
    """Training images/s of a logit-matching (KD) student with a ``teacher`` forward per step."""
    from study.benchmark import timed_fit_images_per_second
    from common.training import Recipe
    from distillation.methods import build_distiller

    distiller = build_distiller("kd", _fresh_model(ctx, student, width), _fresh_model(ctx, teacher, width),
                                total_steps=warmup + steps).to(ctx.device)
    recipe = Recipe(epochs=1, batch_size=batch_size, compile=ctx.compile, seed=ctx.seed,
                    step=ctx.train_step)     # as the students' recipe
    return timed_fit_images_per_second(ctx, distiller, recipe, steps, warmup,
                                       loss_fn=distiller.loss_fn(), params=distiller.trainable_parameters())


def _fake_quant_copy(ctx, model: torch.nn.Module) -> torch.nn.Module:
    """A W4A4 fake-quantized copy (``quantization.formats.simulated_schemes``' 'int4')."""
    from quantization.formats import simulated_schemes
    from quantization.study import quantized_copy

    return quantized_copy(model, simulated_schemes(model)["int4"], ctx)


def _quantized_step(ctx, model_name: str, variant: str, width: float, batch_size: int,
                    steps: int, warmup: int) -> float:
    """Training images/s of a QAT step: W4A4 fake-quant (bf16 autocast, as the int4 QAT) or the
    PT2E int8 QAT graph (fp32), both eager, with the fine-tune recipe."""
    from study.benchmark import timed_fit_images_per_second
    from common.training import Recipe

    model = _fresh_model(ctx, model_name, width)
    recipe = Recipe(epochs=1, batch_size=batch_size, seed=ctx.seed, step="eager")
    if variant == "fake-quant":
        model = _fake_quant_copy(ctx, model)
    else:
        from quantization.pt2e import prepare_int8_qat
        from quantization.study import calibration_batches

        model = prepare_int8_qat(model, calibration_batches(ctx, images=2 * batch_size)[0])
        recipe = recipe.but(bf16=False)
    return timed_fit_images_per_second(ctx, model, recipe, steps, warmup)


def measure_throughput(ctx, train_keys, infer_keys, width: float, batch_size: int,
                       steps: int, warmup: int, rounds: int = 3) -> ThroughputTable:
    """Measure every (model, teacher, variant) training figure and every (model, variant) inference
    figure the plan needs, on ``ctx.device`` at ``width`` and ``batch_size``: plain steps through
    ``study.benchmark.fast_images_per_second``, steps with a teacher as a KD student, QAT steps
    on a fake-quantized or PT2E copy, forwards through ``predict_logits``. Each figure is the
    fastest of ``rounds`` readings (other processes on the machine only ever slow a reading
    down). Models start from random weights (the speed of a step does not depend on them)."""
    from study.benchmark import fast_images_per_second
    from common.results import device_description

    device = device_description(ctx.device)
    table = ThroughputTable(f"measured now on {device}", device, width, batch_size)
    train = sorted({(architecture(m), architecture(t), v) for m, t, v in train_keys}
                   | {(architecture(m), NO_TEACHER, "plain") for m, _ in infer_keys})
    infer_images = max(1000, steps * batch_size)

    def training_reading(model: str, teacher: str, variant: str) -> float:
        if variant == "plain" and teacher == NO_TEACHER:
            return fast_images_per_second(ctx, model, width, batch_size, steps, warmup)
        if variant == "plain":
            return _distillation_step(ctx, model, teacher, width, batch_size, steps, warmup)
        return _quantized_step(ctx, model, variant, width, batch_size, steps, warmup)

    for model, teacher, variant in train:
        figure = max(training_reading(model, teacher, variant) for _ in range(rounds))
        table.train[(model, teacher, variant)] = figure
        print(f"[plan] measured training {model} teacher={teacher} variant={variant}: {figure:.0f} images/s",
              flush=True)
    for model, variant in sorted({(architecture(m), v) for m, v in infer_keys}):
        network = _fresh_model(ctx, model, width)
        if variant == "fake-quant":
            network = _fake_quant_copy(ctx, copy.deepcopy(network))
        figure = max(inference_images_per_second(ctx, network, infer_images) for _ in range(rounds))
        table.infer[(model, variant)] = figure
        print(f"[plan] measured inference {model} variant={variant}: {figure:.0f} images/s", flush=True)
    return table
