"""The cost plan of ``run_all.sh``: every training it does for a profile, and what it will cost.

    python -m common.plan --profile cpu --dataset cifar10 --data-dir /path/to/folder
    python -m common.plan --profile full --dataset cifar100 --throughput results/device_check/cifar10-cuda/throughput.csv
    python -m common.plan ... --compare-measured      # projected vs measured seconds per stage

Lists every training of a fresh ``run_all.sh`` run (one call of ``common.training.fit`` each:
baselines, pruning fine-tunes, QAT, distillation students, the colour-jitter teacher, the combined
pipelines' fine-tunes) with its stage, job name (the checkpoint name, or ``fit``'s label for a
training nothing caches), model, epochs, training images per epoch, teacher and projected
minutes; then the evaluation work of each stage, per-stage subtotals and, last,
``projected_minutes=<float>``.

What is counted, all from the constants and argparse defaults the stages themselves use:
- training images: epochs x the images ``fit`` draws per epoch (whole batches of the training
  split), priced at the training throughput of (model, teacher, variant) -- see
  ``common.throughput`` for the variants (plain, fake-quant, PT2E QAT);
- evaluation images: the validation split after every epoch of a training that validates, the
  readings before/after it (test, validation), and for evaluation-heavy stages the forward images
  of their sweeps (pruning sensitivity, PTQ and scaling-law sweeps, mixed precision, outliers,
  alignment, colour invariance) and calibration passes, priced at the inference throughput of the
  model (through fake-quantizers where activations are fake-quantized); the Hutchinson
  Hessian-vector products of mixed precision are priced as training steps, one per sample and image.
A checkpoint that a later stage reuses (a baseline, a student, the pruned models, the colour
teacher) is counted once, under the first stage of ``run_all.sh`` that trains it.

Not counted (seconds to a minute or two each on a CPU): process start-up and data loading,
latency timing sessions (pruned models, PTQ, mixed precision, pipelines, Pareto), torch.compile /
Inductor compilation of the int8 and fp32-compiled models, writing quantized files, Grad-CAM (a
few dozen images), the bisections of the pruning rule, figures and the report. The channel-pruned
VGG-11 is priced as VGG-11 (approximate: see ``common.throughput``), every distillation method as logit matching (a
teacher forward and a student step; CRD's and hints' heads are small), weight-only fake-quant
evaluation as plain evaluation.

Counting needs only the profile and the standard CIFAR split sizes (``CIFAR_TRAIN_IMAGES``,
``CIFAR_TEST_IMAGES``): no data is loaded unless the plan has to measure throughput itself
(no ``--throughput`` file and no earlier measurement of this device).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from common.profiles import Profile
from common.results import PROJECT_ROOT, read_rows, results_root, run_folder
from common.throughput import (CHANNEL_PRUNED, COLOUR_SUFFIX, NO_TEACHER, MissingThroughput,
                               ThroughputTable)

CIFAR_TRAIN_IMAGES = 50_000   # both CIFAR-10 and CIFAR-100 (the validation split is carved from it)
CIFAR_TEST_IMAGES = 10_000
SEED = 0                      # run_all.sh passes no --seed: every script runs at its default, 0


# ----------------------------------------------------------------------------- what is counted


@dataclass(frozen=True)
class Sizes:
    """Images per split for a profile (counts, not loaded)."""

    train: int          # the training split
    val: int            # the validation split (carved from train)
    test: int           # the test split evaluated
    calibration: int    # quantization calibration subset of train
    per_epoch: int      # images ``fit`` draws per epoch (whole batches of ``batch_size``)

    @classmethod
    def of(cls, profile: Profile) -> "Sizes":
        """Split sizes of ``profile`` on CIFAR (50,000 train images, 10,000 test images)."""
        from quantization.study import CALIBRATION_IMAGES

        available = CIFAR_TRAIN_IMAGES - profile.val_images
        train = min(profile.train_images or available, available)
        test = min(profile.test_images or CIFAR_TEST_IMAGES, CIFAR_TEST_IMAGES)
        per_epoch = (train // profile.batch_size) * profile.batch_size if train >= profile.batch_size else train
        return cls(train, profile.val_images, test, min(CALIBRATION_IMAGES, train), per_epoch)


@dataclass(frozen=True)
class Training:
    """One training (one ``fit`` call) and the evaluations that belong to it."""

    stage: str
    name: str                   # checkpoint name (cached) or fit's label (not cached)
    model: str                  # vgg11 | vgg16 | vgg19 | vgg11-channel-pruned
    epochs: int
    images_per_epoch: int
    teacher: str = NO_TEACHER   # none | vgg16 | vgg19 | vgg16-colour (a teacher forward per step)
    variant: str = "plain"      # plain | fake-quant | pt2e-qat (common.throughput)
    eval_images: int = 0        # validation after every epoch and the readings before/after it
    cached: bool = True         # a checkpoint later stages reuse: counted once, by name

    @property
    def train_images(self) -> int:
        """Images through the training step over all epochs."""
        return self.epochs * self.images_per_epoch

    @property
    def eval_variant(self) -> str:
        """How its evaluations run: through fake-quantizers for a QAT model, else plain."""
        return "plain" if self.variant == "plain" else "fake-quant"


@dataclass(frozen=True)
class Evaluation:
    """Forward work of a stage outside trainings: ``images`` through ``model``."""

    stage: str
    what: str
    model: str
    images: int
    variant: str = "plain"          # plain | fake-quant (activation fake-quantizers)
    training_pass: bool = False     # priced as training steps (Hessian-vector products)


@dataclass
class StageWork:
    """What one stage asks for: trainings (cached ones may have been trained earlier) and forwards."""

    jobs: list[Training] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)


@dataclass
class Work:
    """Every training (each counted once) and evaluation of a run, in run_all order."""

    jobs: list[Training]
    evaluations: list[Evaluation]
    reused: dict[str, list[str]]     # stage -> cached trainings it reuses from an earlier stage
    stages: list[str]
    notes: list[str]


@dataclass(frozen=True)
class PlanSettings:
    """What the count depends on besides the stages' code."""

    profile: Profile
    seeds: tuple[int, ...]          # the students' seeds run_all.sh passes
    dkd_selected: str | None        # the DKD candidate chosen on validation (None: not known)

    @property
    def sizes(self) -> Sizes:
        return Sizes.of(self.profile)


# ----------------------------------------------------------------------------- reading the stages


def _load_script(relative: str):
    """Import a numbered script (``pruning/08_accuracy_vs_sparsity.py``) as a module."""
    path = PROJECT_ROOT / relative
    spec = importlib.util.spec_from_file_location(f"_plan_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ParserReady(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__("parser captured")
        self.parser = parser


@lru_cache(maxsize=None)
def script_defaults(relative: str) -> argparse.Namespace:
    """The argparse defaults of a numbered script, read from the script's own parser: its
    ``main([])`` runs with ``parse_args`` replaced by a stop, so nothing after it runs."""
    module = _load_script(relative)
    original = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise _ParserReady(self)

    argparse.ArgumentParser.parse_args = stop
    try:
        module.main([])
    except _ParserReady as ready:
        return original(ready.parser, [])
    finally:
        argparse.ArgumentParser.parse_args = original
    raise RuntimeError(f"{relative}: main() returned without parsing arguments")


def _run_all_text() -> str:
    return (PROJECT_ROOT / "run_all.sh").read_text()


SEEDS_LINE = re.compile(r"\[\[ \$PROFILE != (\w+) \]\] && seeds=\(--seeds ([0-9 ]+)\)")


def run_all_seeds(profile_name: str) -> tuple[tuple[int, ...], str]:
    """The student seeds run_all.sh passes for ``profile_name`` (read from its
    ``[[ $PROFILE != smoke ]] && seeds=(--seeds 0 1 2)`` line; without ``--seeds`` the script
    trains ``--seed``, 0), and a note when the line could not be read."""
    match = SEEDS_LINE.search(_run_all_text())
    if not match:   # restated from run_all.sh as last read; the note says so
        seeds = (SEED,) if profile_name == "smoke" else (0, 1, 2)
        return seeds, f"could not read the student seeds from run_all.sh: assuming {list(seeds)}"
    excluded, seeds = match.group(1), tuple(int(s) for s in match.group(2).split())
    return ((SEED,) if profile_name == excluded else seeds), ""


def run_all_passes(flag: str) -> bool:
    """Whether run_all.sh passes ``flag`` to some stage (e.g. ``--with-pruned``)."""
    return flag in _run_all_text()


@lru_cache(maxsize=None)
def _layer_counts(model: str) -> tuple[int, int]:
    """(conv+linear layers, conv layers) of ``model`` (independent of width and classes)."""
    from common.models import build_model
    from pruning.methods import prunable_layers

    network = build_model(model, 10, 0.125)
    return len(prunable_layers(network)), len(network.convs())


@lru_cache(maxsize=None)
def _mixed_precision_configs(low_bits: tuple[int, ...]) -> int:
    """Number of simulated configurations of quantization/04 (``configurations`` on a tiny
    VGG-11 with equal sensitivities: the count does not depend on them)."""
    from common.models import build_model
    from quantization.fake_quant import quantizable_layers
    from quantization.mixed_precision import configurations

    network = build_model("vgg11", 10, 0.125)
    rows = [{"layer": n, "hessian_trace_per_param": 1.0, "input_mean_square": 1.0}
            for n in quantizable_layers(network)]
    return len(configurations(network, rows, low_bits))


# ----------------------------------------------------------------------------- job builders


def baseline_job(stage: str, model: str, s: PlanSettings) -> Training:
    """``get_baseline``: the profile's epochs, validation every epoch, test once."""
    z, p = s.sizes, s.profile
    return Training(stage, f"{model}_seed{SEED}", model, p.epochs, z.per_epoch,
               eval_images=p.epochs * z.val + z.test)


def finetune_job(stage: str, name: str, model: str, s: PlanSettings, cached: bool,
                 epochs: int | None = None) -> Training:
    """``pruning.study.finetune_and_measure``: validation and test before, validation every
    epoch, test after (epochs default to the profile's finetune_epochs)."""
    z = s.sizes
    epochs = epochs or s.profile.finetune_epochs
    return Training(stage, name, model, epochs, z.per_epoch, eval_images=(epochs + 1) * z.val + 2 * z.test,
               cached=cached)


# The script that makes each final pruned model and its target flag (pruning/02 and 04).
FINAL_SCRIPTS = {"unstructured": ("pruning/02_unstructured_final.py", "target"),
                 "structured": ("pruning/04_structured_final.py", "reduction")}


def pruned_final_job(stage: str, kind_name: str, s: PlanSettings) -> Training:
    """``pruning.study.get_final``: the cached pruned VGG-11 at its script's default target."""
    script, flag = FINAL_SCRIPTS[kind_name]
    target = getattr(script_defaults(script), flag)
    model = CHANNEL_PRUNED if kind_name == "structured" else "vgg11"
    return finetune_job(stage, f"vgg11_{kind_name}{round(target * 100)}_seed{SEED}", model, s, cached=True)


def student_job(stage: str, student: str, teacher: str, s: PlanSettings, seed: int = SEED) -> Training:
    """``distillation.study.get_student``: student_epochs, validation every epoch, test once."""
    z, p = s.sizes, s.profile
    return Training(stage, f"student_{student}_{teacher}_seed{seed}", "vgg11", p.student_epochs, z.per_epoch,
               teacher=teacher, eval_images=p.student_epochs * z.val + z.test)


def qat_job(stage: str, name: str, model: str, variant: str, epochs: int, s: PlanSettings,
            validate: bool, readings: int) -> Training:
    """``quantization.study.qat_finetune``: validation every epoch when ``validate``, plus
    ``readings`` test-sized readings after it. Nothing caches a QAT model."""
    z = s.sizes
    return Training(stage, name, model, epochs, z.per_epoch, variant=variant,
               eval_images=(epochs * z.val if validate else 0) + readings * z.test, cached=False)


def readings(stage: str, what: str, model: str, count: int, s: PlanSettings, variant: str = "plain",
             splits: str = "val+test") -> Evaluation:
    """``count`` readings of ``model`` on ``splits`` ('val', 'test' or 'val+test')."""
    z = s.sizes
    per = {"val": z.val, "test": z.test, "val+test": z.val + z.test}[splits]
    return Evaluation(stage, f"{what} ({count} x {splits})", model, count * per, variant)


def calibrations(stage: str, what: str, count: int, s: PlanSettings, model: str = "vgg11") -> Evaluation:
    """``count`` calibration passes over the training subset of ``quantization.study``."""
    return Evaluation(stage, f"{what} ({count} x calibration)", model, count * s.sizes.calibration)


# ----------------------------------------------------------------------------- the stages


def baselines(stage: str, s: PlanSettings) -> StageWork:
    """common.train --model vgg11 vgg16 vgg19 (run_all.sh's list; ``BASELINE_MODELS``)."""
    from common.train import BASELINE_MODELS

    return StageWork([baseline_job(stage, m, s) for m in BASELINE_MODELS])


def pruning_sensitivity(kind_name: str) -> Callable[[str, PlanSettings], StageWork]:
    """pruning/01 and 03: the baseline on validation, then every layer (01: conv and linear,
    03: conv) at every grid value (the script's ``--grid`` default, the kind's grid)."""
    def work(stage: str, s: PlanSettings) -> StageWork:
        from pruning.study import STRUCTURED, UNSTRUCTURED

        kind = UNSTRUCTURED if kind_name == "unstructured" else STRUCTURED
        layers, convs = _layer_counts("vgg11")
        swept = layers if kind is UNSTRUCTURED else convs
        grid = len(set(kind.grid))
        return StageWork([baseline_job(stage, "vgg11", s)], [
            readings(stage, "baseline", "vgg11", 1, s, splits="val"),
            readings(stage, f"{swept} layers x {grid} {kind.x_key} values", "vgg11", swept * grid, s, splits="val")])
    return work


def pruning_final(kind_name: str) -> Callable[[str, PlanSettings], StageWork]:
    """pruning/02 and 04: the pruned model at the script's default target (cached by name);
    the rule reads the baseline's validation top-1 once."""
    def work(stage: str, s: PlanSettings) -> StageWork:
        return StageWork([baseline_job(stage, "vgg11", s), pruned_final_job(stage, kind_name, s)],
                         [readings(stage, "equal-drop rule: baseline", "vgg11", 1, s, splits="val")])
    return work


def _finals(stage: str, s: PlanSettings) -> list[Training]:
    return [baseline_job(stage, "vgg11", s), pruned_final_job(stage, "unstructured", s),
            pruned_final_job(stage, "structured", s)]


def pruning_cached_models(evaluate: bool) -> Callable[[str, PlanSettings], StageWork]:
    """pruning/05-07: the three cached models; 06 reads each on test and validation (its
    latency session is not counted), 05 and 07 evaluate nothing that counts."""
    def work(stage: str, s: PlanSettings) -> StageWork:
        evaluations = [readings(stage, f"{name} model", model, 1, s)
                       for name, model in (("original", "vgg11"), ("unstructured", "vgg11"),
                                           ("structured", CHANNEL_PRUNED))] if evaluate else []
        return StageWork(_finals(stage, s), evaluations)
    return work


def pruning_accuracy_vs_sparsity(stage: str, s: PlanSettings) -> StageWork:
    """pruning/08: one fine-tune per default target (not cached), the rule's baseline reading
    and the baseline's test top-1."""
    defaults = script_defaults("pruning/08_accuracy_vs_sparsity.py")
    jobs = [baseline_job(stage, "vgg11", s)] + [
        finetune_job(stage, f"sparsity {t:.2f}", "vgg11", s, cached=False, epochs=defaults.finetune_epochs)
        for t in sorted(defaults.targets)]
    return StageWork(jobs, [readings(stage, "equal-drop rule: baseline", "vgg11", 1, s, splits="val"),
                            readings(stage, "baseline", "vgg11", 1, s, splits="test")])


# quantization/formats.py ptq_rows: nine (format, scheme) rows, each read on validation and test.
# Seven run a plain forward: fp32 eager, fp32 compiled, fp16 and bf16 casts, int8 PT2E, torchao
# int4 weight-only, packed int4 weight-only; two fake-quantize activations (simulated_schemes'
# 'int8-sim' and 'int4'), and they and the PT2E model each calibrate once.
PTQ_PLAIN_ROWS = 7
PTQ_ACTIVATION_SCHEMES = ("int8-sim", "int4")

# quantization/formats.py qat_curves: the fp32 control, the three fake-quant formats and PT2E int8,
# format -> the training step it runs. Each is read before (PTQ, epoch 0) on validation and test.
QAT_FORMATS = {"fp32": "plain", "fp16": "fake-quant", "bf16": "fake-quant", "int4": "fake-quant",
               "int8": "pt2e-qat"}

# quantization/mixed_precision.py real_kernel_rows: fp32, int8 everywhere, int8 with first/last fp32.
MIXED_PRECISION_REAL_ROWS = 3


def quantization_ptq(stage: str, s: PlanSettings) -> StageWork:
    """quantization/01: the PTQ rows on validation and test, and their calibrations."""
    return StageWork([baseline_job(stage, "vgg11", s)], [
        readings(stage, "PTQ rows with a plain forward", "vgg11", PTQ_PLAIN_ROWS, s),
        readings(stage, "PTQ rows with activation fake-quant", "vgg11", len(PTQ_ACTIVATION_SCHEMES), s,
                 variant="fake-quant"),
        calibrations(stage, "activation ranges and PT2E", len(PTQ_ACTIVATION_SCHEMES) + 1, s)])


def quantization_qat(stage: str, s: PlanSettings) -> StageWork:
    """quantization/02: one QAT run per format (the script's --epochs default, else the
    profile's finetune_epochs), validation every epoch and a test reading after; PTQ readings
    first; the int8 model converted and read at the end."""
    epochs = script_defaults("quantization/02_qat.py").epochs or s.profile.finetune_epochs
    jobs = [baseline_job(stage, "vgg11", s)] + [
        qat_job(stage, f"qat-{fmt}", "vgg11", variant, epochs, s, validate=True, readings=1)
        for fmt, variant in QAT_FORMATS.items()]
    plain = [f for f, variant in QAT_FORMATS.items() if variant != "fake-quant"]
    return StageWork(jobs, [
        readings(stage, f"PTQ readings of {', '.join(plain)}", "vgg11", len(plain), s),
        readings(stage, "PTQ readings through fake-quant", "vgg11", len(QAT_FORMATS) - len(plain), s,
                 variant="fake-quant"),
        readings(stage, "converted int8 after QAT", "vgg11", 1, s),
        calibrations(stage, "int4 ranges and int8 PT2E", 2, s)])


def quantization_scaling_law(stage: str, s: PlanSettings) -> StageWork:
    """quantization/03: weight-only PTQ of every model (run_all adds the channel-pruned VGG-11
    with --with-pruned) at every spec of ``sweep_specs``, read on validation and test (weight
    fake-quant priced as plain); QAT of VGG-11 at the --qat-bits specs for --qat-epochs, read
    on validation and test after."""
    from quantization.scaling_law import sweep_specs

    d = script_defaults("quantization/03_scaling_law.py")
    models = list(d.models) + ([CHANNEL_PRUNED] if d.with_pruned or run_all_passes("--with-pruned") else [])
    specs = len(sweep_specs(tuple(d.bits)))
    jobs = [baseline_job(stage, m, s) for m in d.models]
    if CHANNEL_PRUNED in models:
        jobs.append(pruned_final_job(stage, "structured", s))
    jobs += [qat_job(stage, f"qat-{spec.label}", "vgg11", "fake-quant", d.qat_epochs, s, validate=False,
                     readings=0)
             for spec in (sweep_specs(tuple(d.qat_bits))[:-1] if d.qat_bits else [])]
    evaluations = [readings(stage, f"{m} PTQ sweep", m, specs, s) for m in models]
    qat_runs = sum(1 for j in jobs if j.variant == "fake-quant")
    if qat_runs:
        evaluations.append(readings(stage, "after QAT (weight fake-quant)", "vgg11", qat_runs, s))
    return StageWork(jobs, evaluations)


def quantization_mixed_precision(stage: str, s: PlanSettings) -> StageWork:
    """quantization/04: Hutchinson traces (--hutchinson-samples Hessian-vector products over
    --hessian-images validation images, priced as training steps), input moments on the
    calibration set, every simulated configuration and the real-kernel rows on validation and
    test (weights baked: plain), and the two int8 calibrations."""
    d = script_defaults("quantization/04_mixed_precision.py")
    images = min(d.hessian_images, s.sizes.val)
    return StageWork([baseline_job(stage, "vgg11", s)], [
        Evaluation(stage, f"Hutchinson traces ({d.hutchinson_samples + 1} passes x {images} images)", "vgg11",
                   (d.hutchinson_samples + 1) * images, training_pass=True),
        calibrations(stage, "input moments", 1, s),
        readings(stage, "simulated configurations", "vgg11", _mixed_precision_configs(tuple(d.low_bits)), s),
        readings(stage, "real-kernel rows", "vgg11", MIXED_PRECISION_REAL_ROWS, s),
        calibrations(stage, "int8 PT2E", 2, s)])


def quantization_outliers(stage: str, s: PlanSettings) -> StageWork:
    """quantization/05: statistics on the calibration set; every quantizer x bits x scope on
    test (activation scopes through fake-quant, each calibrated); one layer at a time at int4
    (weights, then inputs: a one-layer activation quantizer is priced as plain, and calibrates)."""
    from quantization.outliers import BITS, PER_LAYER_QUANTIZERS, QUANTIZERS, SCOPES

    layers, _ = _layer_counts("vgg11")
    act_scopes = [sc for sc in SCOPES if "activations" in sc]
    per_scope = len(BITS) * len(QUANTIZERS)
    return StageWork([baseline_job(stage, "vgg11", s)], [
        calibrations(stage, "input statistics", 1, s),
        readings(stage, "weight-only quantizers", "vgg11", per_scope * (len(SCOPES) - len(act_scopes)), s,
                 splits="test"),
        readings(stage, "quantizers on activations", "vgg11", per_scope * len(act_scopes), s,
                 variant="fake-quant", splits="test"),
        calibrations(stage, "activation quantizers", per_scope * len(act_scopes), s),
        readings(stage, "per layer, baseline", "vgg11", 1 + layers * 2 * len(PER_LAYER_QUANTIZERS), s,
                 splits="test"),
        calibrations(stage, "per-layer activation quantizers", layers * len(PER_LAYER_QUANTIZERS), s)])


def _study_students(stage: str, s: PlanSettings, seeds: Sequence[int]) -> list[Training]:
    """``01_students``' trainings: the DKD candidates at the tuning seed, then every student of
    ``STUDENTS`` at each seed (``dkd_tuned`` is the selected candidate)."""
    from distillation.methods import METHODS
    from distillation.study import DKD_GRID, STUDENTS, TEACHER, TUNED_DKD

    jobs = [student_job(stage, name, TEACHER, s) for name in DKD_GRID]    # tune_dkd at --seed
    for seed in seeds:
        for name, (method, _) in STUDENTS.items():
            if name == TUNED_DKD:
                if s.dkd_selected is None and seed == SEED:
                    continue      # one of the candidates just listed, whichever is selected
                student = s.dkd_selected or "<selected DKD candidate>"
            else:
                student = name
            teacher = TEACHER if METHODS[method].needs_teacher else NO_TEACHER
            jobs.append(student_job(stage, student, teacher, s, seed))
    return jobs


def distillation_students(stage: str, s: PlanSettings) -> StageWork:
    """distillation/01: the teacher baseline and every student at run_all's seeds."""
    from distillation.study import TEACHER

    return StageWork([baseline_job(stage, TEACHER, s)] + _study_students(stage, s, s.seeds))


def distillation_alignment(stage: str, s: PlanSettings) -> StageWork:
    """distillation/02: every student (cached, seed 0) and its teacher on test."""
    from distillation.study import STUDENTS, TEACHER

    return StageWork([baseline_job(stage, TEACHER, s)] + _study_students(stage, s, [SEED]), [
        readings(stage, "students", "vgg11", len(STUDENTS), s, splits="test"),
        readings(stage, "teacher, once per student", TEACHER, len(STUDENTS), s, splits="test")])


def distillation_gradcam(stage: str, s: PlanSettings) -> StageWork:
    """distillation/03: cached students and teacher; Grad-CAM of a few dozen images (not counted)."""
    from distillation.study import TEACHER

    return StageWork([baseline_job(stage, TEACHER, s)] + _study_students(stage, s, [SEED]))


def distillation_colour(stage: str, s: PlanSettings) -> StageWork:
    """distillation/04: the colour-jitter teacher (fine-tune), S_I, and the script's methods from
    T (cached) and from T_colour; every model on clean and colour-jittered test images."""
    from distillation.study import TEACHER

    methods = script_defaults("distillation/04_color_invariance.py").methods
    colour = f"{TEACHER}{COLOUR_SUFFIX}"
    z, p = s.sizes, s.profile
    jobs = [baseline_job(stage, TEACHER, s),
            Training(stage, f"{TEACHER}_colour_seed{SEED}", TEACHER, p.finetune_epochs, z.per_epoch,
                eval_images=p.finetune_epochs * z.val + z.test),
            student_job(stage, "independent", NO_TEACHER, s)]
    for method in methods:
        jobs += [student_job(stage, method, TEACHER, s), student_job(stage, method, colour, s)]
    return StageWork(jobs, [readings(stage, "T and T_colour, clean and jittered", TEACHER, 4, s, splits="test"),
                            readings(stage, "students, clean and jittered", "vgg11", 2 * (1 + 2 * len(methods)), s,
                                     splits="test")])


def distillation_teacher_size(stage: str, s: PlanSettings) -> StageWork:
    """distillation/05: a student of the script's method from each teacher; alignment on test."""
    d = script_defaults("distillation/05_teacher_size.py")
    jobs = []
    for teacher in d.teachers:
        jobs += [baseline_job(stage, teacher, s), student_job(stage, d.method, teacher, s)]
    evaluations = [readings(stage, "students", "vgg11", len(d.teachers), s, splits="test")]
    evaluations += [readings(stage, f"teacher {t}", t, 1, s, splits="test") for t in d.teachers]
    return StageWork(jobs, evaluations)


# combined/pipelines.py: what each kind of step (named by the function it calls) trains and reads.
# A step the plan does not know stops it (``combined_step_kind``), so a new one is never missed.
COMBINED_STEPS = ("pruned_stage", "int8_ptq_stage", "int8_qat_stage", "int4_ptq_stage", "int4_qat_stage")
# combined/pipelines.py PIPELINES: the start model each start function returns (cached elsewhere).
COMBINED_STARTS = {"kd_student": "vgg11", "get_structured_final": CHANNEL_PRUNED}


def _names_called(function: Callable) -> set[str]:
    return {function.__name__, *function.__code__.co_names}


def combined_step_kind(step: Callable) -> str:
    """Which of ``COMBINED_STEPS`` a pipeline step is (a function, or a lambda calling one)."""
    kinds = _names_called(step) & set(COMBINED_STEPS)
    if len(kinds) != 1:
        raise ValueError(f"combined/pipelines.py has a step the plan cannot count ({step.__name__}: calls "
                         f"{sorted(_names_called(step))}); add it to common.plan.COMBINED_STEPS")
    return kinds.pop()


def combined_start_model(start: Callable) -> str:
    """The model a pipeline starts from (``COMBINED_STARTS``)."""
    names = _names_called(start) & set(COMBINED_STARTS)
    if len(names) != 1:
        raise ValueError(f"combined/pipelines.py has a start the plan cannot count (calls "
                         f"{sorted(_names_called(start))}); add it to common.plan.COMBINED_STARTS")
    return COMBINED_STARTS[names.pop()]


def combined_pipelines(stage: str, s: PlanSettings) -> StageWork:
    """combined/01: each default pipeline from its cached start model; each step's training
    (the pruning fine-tune validates, QAT does not) and calibration, every stage model read
    on validation and test (simulated int4 stages through fake-quant)."""
    from combined.pipelines import PIPELINES
    from distillation.study import TEACHER

    names = script_defaults("combined/01_pipelines.py").pipelines
    work = StageWork([*_finals(stage, s), baseline_job(stage, TEACHER, s), student_job(stage, "kd", TEACHER, s)])
    epochs = s.profile.finetune_epochs
    for name in names:
        start, steps = PIPELINES[name]
        model = combined_start_model(start)
        work.evaluations.append(readings(stage, f"{name} stage 0", model, 1, s))
        for index, step in enumerate(steps, start=1):
            kind, job_name = combined_step_kind(step), f"{name}_{index}"
            if kind == "pruned_stage":
                work.evaluations.append(readings(stage, f"{job_name} rule: baseline", "vgg11", 1, s, splits="val"))
                work.jobs.append(finetune_job(stage, job_name, model, s, cached=False))
            elif kind == "int8_qat_stage":
                work.jobs.append(qat_job(stage, job_name, model, "pt2e-qat", epochs, s, validate=False, readings=0))
            elif kind == "int4_qat_stage":
                work.jobs.append(qat_job(stage, job_name, model, "fake-quant", epochs, s, validate=False, readings=0))
            if kind in ("int8_ptq_stage", "int8_qat_stage", "int4_ptq_stage"):
                work.evaluations.append(calibrations(stage, job_name, 1, s, model))
            read_variant = "fake-quant" if kind.startswith("int4") else "plain"   # int4 stages are simulated
            work.evaluations.append(readings(stage, f"{job_name} ({kind})", model, 1, s, variant=read_variant))
    return work


def combined_pareto(stage: str, s: PlanSettings) -> StageWork:
    """combined/02: reads the CSVs; cached models for its latency session (not counted)."""
    return StageWork([baseline_job(stage, "vgg11", s), pruned_final_job(stage, "structured", s)])


# The stages of run_all.sh, in its order (run_all.sh is the source; tests check every name there).
STAGES: list[tuple[str, Callable[[str, PlanSettings], StageWork]]] = [
    ("baselines", baselines),
    ("pruning/01_unstructured_sensitivity", pruning_sensitivity("unstructured")),
    ("pruning/02_unstructured_final", pruning_final("unstructured")),
    ("pruning/03_structured_sensitivity", pruning_sensitivity("structured")),
    ("pruning/04_structured_final", pruning_final("structured")),
    ("pruning/05_weight_histograms", pruning_cached_models(evaluate=False)),
    ("pruning/06_compare_models", pruning_cached_models(evaluate=True)),
    ("pruning/07_gradcam", pruning_cached_models(evaluate=False)),
    ("pruning/08_accuracy_vs_sparsity", pruning_accuracy_vs_sparsity),
    ("quantization/01_ptq", quantization_ptq),
    ("quantization/02_qat", quantization_qat),
    ("quantization/03_scaling_law", quantization_scaling_law),
    ("quantization/04_mixed_precision", quantization_mixed_precision),
    ("quantization/05_outliers", quantization_outliers),
    ("distillation/01_students", distillation_students),
    ("distillation/02_alignment", distillation_alignment),
    ("distillation/03_gradcam", distillation_gradcam),
    ("distillation/04_color_invariance", distillation_colour),
    ("distillation/05_teacher_size", distillation_teacher_size),
    ("combined/01_pipelines", combined_pipelines),
    ("combined/02_pareto", combined_pareto),
]


def recorded_dkd_selection(dataset: str, profile_name: str) -> str | None:
    """The DKD candidate selected in ``results/<dataset>-<profile>/distillation/dkd_tuning.csv``
    (a fresh run of the same code and data selects it again), else None."""
    rows = read_rows(results_root() / run_folder(dataset, profile_name) / "distillation" / "dkd_tuning.csv")
    selected = [r["candidate"] for r in rows if r.get("selected") == "True"]
    return selected[0] if len(selected) == 1 else None


def plan_work(profile: Profile, seeds: Sequence[int] | None = None, dkd_selected: str | None = None) -> Work:
    """Every training and evaluation of a fresh run_all.sh run of ``profile``, in stage order;
    a cached training asked for again by a later stage is listed once, under the first stage.

    ``seeds``: the student seeds (default: what run_all.sh passes for the profile);
    ``dkd_selected``: the DKD candidate chosen on validation (None: unknown, assumed not the
    published ``dkd``, whose seeds 1-2 would otherwise be shared with ``dkd_tuned``'s)."""
    notes = []
    if seeds is None:
        seeds, note = run_all_seeds(profile.name)
        notes += [note] if note else []
    if dkd_selected is None:
        notes.append("DKD selection not known: assumed to be a candidate other than the published 'dkd' "
                     "(if 'dkd' is selected, dkd_tuned's seeds 1-2 reuse dkd's students)")
    settings = PlanSettings(profile, tuple(seeds), dkd_selected)
    seen: set[str] = set()
    jobs, evaluations, reused = [], [], {}
    for stage, enumerate_stage in STAGES:
        work = enumerate_stage(stage, settings)
        for job in work.jobs:
            if job.cached and job.name in seen:
                reused.setdefault(stage, []).append(job.name)
                continue
            seen.add(job.name)
            jobs.append(job)
        evaluations += work.evaluations
    return Work(jobs, evaluations, reused, [name for name, _ in STAGES], notes)


def job_rows(profile: Profile, seeds: Sequence[int] | None = None, dkd_selected: str | None = None) -> list[dict]:
    """One dict per training of ``plan_work``: stage, job, model, epochs, images_per_epoch,
    teacher, variant, train_images, eval_images (counts of images)."""
    return [{"job": j.name, **{k: v for k, v in asdict(j).items() if k != "name"}, "train_images": j.train_images}
            for j in plan_work(profile, seeds, dkd_selected).jobs]


# ----------------------------------------------------------------------------- projection


@dataclass
class Projection:
    """Projected seconds per training, per evaluation and per stage, and the figures used."""

    job_rows: list[dict]
    evaluation_rows: list[dict]
    stage_rows: list[dict]
    figures: list[dict]          # every throughput figure used, measured or estimated
    total_seconds: float

    @property
    def total_minutes(self) -> float:
        return self.total_seconds / 60


def _figure_row(kind: str, model: str, teacher: str, variant: str, figure) -> dict:
    return {"pass": kind, "model": model, "teacher": teacher, "variant": variant,
            "images_per_second": round(figure.images_per_second, 1),
            "source": "estimated" if figure.estimated else "measured", "note": figure.note}


# The stages whose trainings run through common.jobs.run_jobs (concurrently with --jobs N); a
# test checks this list against the scripts that call run_jobs.
POOLED_STAGES = ("baselines", "distillation/01_students", "distillation/04_color_invariance",
                 "distillation/05_teacher_size")


def concurrent_seconds(job_seconds: Sequence[float], workers: int, speedup: float) -> float:
    """Wall seconds of independent jobs (each ``job_seconds`` when alone) on ``workers``
    processes that together train ``speedup`` times as fast as one: the work divided by the
    speedup, but never less than the longest job run at a worker's share (``speedup/workers``)."""
    if not job_seconds:
        return 0.0
    if workers <= 1:
        return float(sum(job_seconds))
    return max(sum(job_seconds) / speedup, max(job_seconds) * workers / speedup)


def project(work: Work, throughput: ThroughputTable, workers: int = 1, speedup: float = 1.0) -> Projection:
    """Seconds = training images / training images/s of (model, teacher, variant) + evaluated
    images / inference images/s of the model (Hessian passes at its training images/s).
    In POOLED_STAGES the trainings run on ``workers`` processes that train ``speedup`` times as
    fast together as one (``concurrent_seconds``); elsewhere one at a time.
    Raises MissingThroughput when a needed model has no figure at all."""
    figures: dict[tuple, dict] = {}

    def train_rate(model: str, teacher: str, variant: str) -> float:
        figure = throughput.training(model, teacher, variant)
        figures.setdefault(("train", model, teacher, variant), _figure_row("train", model, teacher, variant, figure))
        return figure.images_per_second

    def infer_rate(model: str, variant: str) -> float:
        figure = throughput.inference(model, variant)
        figures.setdefault(("infer", model, NO_TEACHER, variant), _figure_row("infer", model, NO_TEACHER, variant, figure))
        return figure.images_per_second

    jobs = []
    for j in work.jobs:
        train_s = j.train_images / train_rate(j.model, j.teacher, j.variant)
        eval_s = j.eval_images / infer_rate(j.model, j.eval_variant) if j.eval_images else 0.0
        jobs.append({"stage": j.stage, "job": j.name, "model": j.model, "epochs": j.epochs,
                     "images_per_epoch": j.images_per_epoch, "teacher": j.teacher, "variant": j.variant,
                     "eval_images": j.eval_images, "train_seconds": train_s, "eval_seconds": eval_s,
                     "projected_minutes": round((train_s + eval_s) / 60, 2)})
    evaluations = []
    for e in work.evaluations:
        rate = train_rate(e.model, NO_TEACHER, "plain") if e.training_pass else infer_rate(e.model, e.variant)
        evaluations.append({"stage": e.stage, "what": e.what, "model": e.model, "variant": e.variant,
                            "images": e.images, "seconds": e.images / rate})
    stages = stage_subtotals(work, jobs, evaluations, workers, speedup)
    return Projection(jobs, evaluations, stages, list(figures.values()),
                      sum(r["projected_seconds"] for r in stages))


def stage_subtotals(work: Work, jobs: list[dict], evaluations: list[dict], workers: int = 1,
                    speedup: float = 1.0) -> list[dict]:
    """Per stage (run_all order): trainings, their epochs, training and evaluated images,
    cached trainings reused, projected seconds and minutes (POOLED_STAGES' trainings on
    ``workers`` processes, ``concurrent_seconds``)."""
    rows = []
    for stage in work.stages:
        mine = [j for j in jobs if j["stage"] == stage]
        evals = [e for e in evaluations if e["stage"] == stage]
        each = [j["train_seconds"] + j["eval_seconds"] for j in mine]
        pooled = stage in POOLED_STAGES
        seconds = (concurrent_seconds(each, workers, speedup) if pooled else sum(each)) + sum(e["seconds"] for e in evals)
        rows.append({"stage": stage, "trainings": len(mine), "epochs": sum(j["epochs"] for j in mine),
                     "train_images": sum(j["epochs"] * j["images_per_epoch"] for j in mine),
                     "eval_images": sum(j["eval_images"] for j in mine) + sum(e["images"] for e in evals),
                     "reused_trainings": len(work.reused.get(stage, [])),
                     "projected_seconds": round(seconds, 1), "projected_minutes": round(seconds / 60, 2)})
    return rows


def needed_keys(work: Work) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    """(training keys (model, teacher, variant), inference keys (model, variant)) the projection reads."""
    train = {(j.model, j.teacher, j.variant) for j in work.jobs}
    train |= {(e.model, NO_TEACHER, "plain") for e in work.evaluations if e.training_pass}
    infer = {(j.model, j.eval_variant) for j in work.jobs if j.eval_images}
    infer |= {(e.model, e.variant) for e in work.evaluations if not e.training_pass}
    infer |= {(j.teacher, "plain") for j in work.jobs if j.teacher != NO_TEACHER}   # estimates use it
    return train, infer


# ----------------------------------------------------------------------------- measured costs


def measured_stage_seconds(dataset: str, profile_name: str) -> dict[str, float]:
    """Measured wall seconds per run_all stage of ``results/<dataset>-<profile>/``, as the
    README's cost table has them (``common.readme.cost_rows``: from the provenance sidecars;
    baselines and students count their training time). Its 'baselines/common.train' is
    run_all's stage 'baselines'."""
    from common.readme import cost_rows

    return {("baselines" if r["stage"].startswith("baselines/") else r["stage"]): float(r["wall_seconds"])
            for r in cost_rows(run_folder(dataset, profile_name))}


def comparison_rows(projection: Projection, measured: dict[str, float]) -> list[dict]:
    """Per stage: projected and measured seconds and measured / projected; then the totals
    over the stages that have a measurement."""
    rows = []
    for r in projection.stage_rows:
        real = measured.get(r["stage"])
        rows.append({"stage": r["stage"], "projected_seconds": round(r["projected_seconds"]),
                     "measured_seconds": "" if real is None else round(real),
                     "measured_over_projected": "" if real is None or not r["projected_seconds"]
                     else round(real / r["projected_seconds"], 2)})
    both = [r for r in rows if r["measured_seconds"] != ""]
    projected, real = sum(r["projected_seconds"] for r in both), sum(r["measured_seconds"] for r in both)
    rows.append({"stage": f"total ({len(both)} measured stages)", "projected_seconds": projected,
                 "measured_seconds": real, "measured_over_projected": round(real / projected, 2) if projected else ""})
    return rows


# ----------------------------------------------------------------------------- command line


def _shown(path: Path | str) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def cached_throughput_path(dataset: str, profile_name: str) -> Path:
    """Where the plan keeps its own measurement: ``results/<dataset>-<profile>/plan/throughput.csv``."""
    return results_root() / run_folder(dataset, profile_name) / "plan" / "throughput.csv"


def resolve_throughput(args: argparse.Namespace, profile: Profile, work: Work) -> ThroughputTable:
    """--throughput CSV, else the plan's earlier measurement on this device (unless
    --remeasure), else a short benchmark now (loads the data), written with provenance."""
    from common.cli import RunContext, resolve_device
    from common.results import device_description, write_results
    from common.throughput import measure_throughput, read_cached, read_throughput_csv

    if args.throughput:
        return read_throughput_csv(args.throughput, profile.width, profile.batch_size,
                                   device=f"unknown (not recorded in {_shown(args.throughput)})")
    device = device_description(resolve_device(args.device))
    cache = cached_throughput_path(args.dataset, profile.name)
    train_keys, infer_keys = needed_keys(work)
    if not args.remeasure:
        cached = read_cached(cache, device, profile.width, profile.batch_size)
        if cached is not None and cached.covers(train_keys, infer_keys):
            cached.source = f"{_shown(cache)} (measured earlier on this device; --remeasure to redo)"
            return cached
    ctx = RunContext.from_args(args)
    table = measure_throughput(ctx, train_keys, infer_keys, profile.width, profile.batch_size,
                               args.steps, args.warmup, args.rounds)
    write_results(table.rows(), cache, ctx.provenance(timed_steps=args.steps, warmup_steps=args.warmup,
                                                      rounds=args.rounds, reading="fastest of the rounds",
                                                      what="training and inference images/s for common.plan"))
    return table


def _table(rows: list[dict], columns: list[str]) -> str:
    from common.readme import markdown_table

    return markdown_table(rows, columns) if rows else "(none)\n"


def print_plan(profile: Profile, dataset: str, work: Work, projection: Projection,
               throughput: ThroughputTable, data_note: str) -> None:
    """The header, figures, trainings, evaluations and per-stage subtotals (markdown tables)."""
    z = Sizes.of(profile)
    print(f"plan: profile={profile.name} dataset={dataset} width={profile.width:g} batch={profile.batch_size}")
    print(f"device: {throughput.device}")
    print(f"throughput: {throughput.source}")
    print(f"images: train split {z.train:,} ({z.per_epoch:,} drawn per epoch), val {z.val:,}, test {z.test:,}, "
          f"calibration {z.calibration:,}; {data_note}")
    for note in work.notes:
        print(f"note: {note}")
    print("\nThroughput figures used (images/s):\n")
    print(_table(projection.figures, ["pass", "model", "teacher", "variant", "images_per_second", "source", "note"]))
    print(f"Trainings ({len(projection.job_rows)}, each counted once):\n")
    print(_table(projection.job_rows, ["stage", "job", "model", "epochs", "images_per_epoch", "teacher", "variant",
                                       "eval_images", "projected_minutes"]))
    print("Evaluation work outside trainings:\n")
    print(_table([{**e, "minutes": round(e["seconds"] / 60, 2)} for e in projection.evaluation_rows],
                 ["stage", "what", "model", "variant", "images", "minutes"]))
    print("Per stage:\n")
    print(_table(projection.stage_rows, ["stage", "trainings", "epochs", "train_images", "eval_images",
                                         "reused_trainings", "projected_minutes"]))
    print(f"Total: {len(projection.job_rows)} trainings, {sum(r['epochs'] for r in projection.job_rows)} "
          f"epochs, {projection.total_minutes:.1f} minutes projected on {throughput.device}.")


def concurrency(args: argparse.Namespace, device: str) -> tuple[int, float, str]:
    """(workers, speedup, note): ``--jobs`` (default: ``common.jobs.default_jobs`` of ``device``,
    the description of the device the figures were measured on)
    and how much faster that many processes train together than one, read by
    ``concurrency_speedup`` from ``--concurrency`` (a device check's throughput.csv). Without
    that reading the trainings are priced one at a time, whatever the workers."""
    from common.jobs import default_jobs
    from common.throughput import concurrency_speedup

    workers = args.jobs or default_jobs("cuda" if device.startswith("cuda") else "cpu")
    if workers <= 1:
        return 1, 1.0, "trainings run one at a time (--jobs 1)"
    speedup = concurrency_speedup(args.concurrency, workers) if args.concurrency else None
    if speedup is None:
        return 1, 1.0, (f"trainings priced one at a time: no reading of {workers} concurrent processes "
                        "(give --concurrency with a device check's throughput.csv); with --jobs "
                        f"{workers} the stages {', '.join(POOLED_STAGES)} can take less wall time")
    return workers, speedup, (f"{', '.join(POOLED_STAGES)}: trainings on {workers} workers, "
                              f"{speedup:.2f}x one process's throughput (VGG-11, {_shown(args.concurrency)})")


def write_projection(projection: Projection, measured: dict[str, float], path: Path, ctx_fields: dict) -> None:
    """``plan/projection.csv``: per stage trainings, projected and measured seconds and their
    ratio, then the total; provenance names the throughput source, device and concurrency."""
    from common.results import provenance, write_results

    compared = {r["stage"]: r for r in comparison_rows(projection, measured)} if measured else {}
    rows = [{"stage": r["stage"], "trainings": r["trainings"], "projected_seconds": round(r["projected_seconds"]),
             "measured_seconds": compared.get(r["stage"], {}).get("measured_seconds", ""),
             "measured_over_projected": compared.get(r["stage"], {}).get("measured_over_projected", "")}
            for r in projection.stage_rows]
    total_measured = sum(r["measured_seconds"] for r in rows if r["measured_seconds"] != "")
    rows.append({"stage": "total", "trainings": sum(r["trainings"] for r in rows),
                 "projected_seconds": round(projection.total_seconds),
                 "measured_seconds": round(total_measured) if measured else "",
                 "measured_over_projected": round(total_measured / projection.total_seconds, 2) if measured else ""})
    write_results(rows, path, provenance(**ctx_fields, projected_minutes=round(projection.total_minutes, 1),
                                         measured_minutes=round(total_measured / 60, 1) if measured else ""))


def main(argv: list[str] | None = None) -> None:
    from common.cli import add_common_args, resolve_device
    from common.profiles import get_profile

    parser = add_common_args(argparse.ArgumentParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--throughput", default=None,
                        help="CSV of images/s (model, width, batch_size, [teacher], [variant], "
                             "train_images_per_second, [infer_images_per_second]), e.g. "
                             "results/device_check/<dataset>-<device>/throughput.csv; no data is loaded")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per benchmark (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="readings per figure; the fastest is kept (default 3)")
    parser.add_argument("--remeasure", action="store_true",
                        help="benchmark again even if results/<dataset>-<profile>/plan/throughput.csv has this device")
    parser.add_argument("--compare-measured", action="store_true",
                        help="also print projected vs measured seconds per stage (provenance sidecars "
                             "of results/<dataset>-<profile>/)")
    parser.add_argument("--concurrency", default=None,
                        help="a device check's throughput.csv with concurrent VGG-11 readings: prices the "
                             "pooled stages' trainings on --jobs workers")
    parser.add_argument("--dkd-selected", default=None,
                        help="the DKD candidate selected on validation (default: the one recorded in "
                             "results/<dataset>-<profile>/distillation/dkd_tuning.csv, if any)")
    args = parser.parse_args(argv)
    started = time.time()
    profile = get_profile(args.profile, announce=False)
    dkd = args.dkd_selected or recorded_dkd_selection(args.dataset, profile.name)
    work = plan_work(profile, dkd_selected=dkd)
    if dkd:
        work.notes.append(f"DKD selection: {dkd}" + ("" if args.dkd_selected else " (recorded in dkd_tuning.csv)"))
    try:
        throughput = resolve_throughput(args, profile, work)
        workers, speedup, note = concurrency(args, throughput.device)
        work.notes.append(note)
        projection = project(work, throughput, workers, speedup)
    except MissingThroughput as exc:
        raise SystemExit(f"error: {exc}") from None
    measured_now = throughput.source.startswith("measured now")
    data_note = ("data loaded only to measure throughput" if measured_now
                 else "counted from the profile and the standard CIFAR sizes, no data loaded")
    print_plan(profile, args.dataset, work, projection, throughput, data_note)
    if args.compare_measured:
        measured = measured_stage_seconds(args.dataset, profile.name)
        print(f"\nProjected vs measured wall seconds (results/{run_folder(args.dataset, profile.name)}/, "
              "as the README's cost table):\n")
        if measured:
            print(_table(comparison_rows(projection, measured),
                         ["stage", "projected_seconds", "measured_seconds", "measured_over_projected"]))
        else:
            print(f"(no measured results under results/{run_folder(args.dataset, profile.name)}/)\n")
    measured = measured_stage_seconds(args.dataset, profile.name)
    out = results_root() / run_folder(args.dataset, profile.name) / "plan" / "projection.csv"
    write_projection(projection, measured, out, {
        "profile": profile.name, "dataset": args.dataset, "seed": SEED, "device": resolve_device(args.device),
        "started": started, "throughput_source": throughput.source, "throughput_device": throughput.device,
        "workers": workers, "concurrency_speedup": round(speedup, 3)})
    print(f"projected_minutes={projection.total_minutes:.1f}")


if __name__ == "__main__":
    sys.exit(main())
