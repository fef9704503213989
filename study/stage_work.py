"""The work of each stage of ``study.stages``: its trainings and evaluation work, counted.

Each function is ``work(stage, settings) -> StageWork``. Defaults are read from the stage's own
parser (``stage.arguments``), trainings a stage runs as jobs from the very job list it runs
(``stage.jobs``), and counts from the constants the stage's code iterates over; nothing here
restates a flag, a file name or a count that a stage holds.

What is counted: training images (epochs x images drawn per epoch), priced at the training
throughput of (model, teacher, variant); evaluated images (validation after every epoch, the
readings before/after a training, and the sweeps, readings and calibration passes of each stage),
priced at the inference throughput of the model; the Hutchinson Hessian-vector products of mixed
precision as training steps. Not counted (seconds to a minute each on a CPU): process start-up,
data loading, latency timing sessions, torch.compile, writing files, Grad-CAM of a few dozen
images, figures. The channel-pruned VGG-11 is priced as VGG-11, every distillation method as
logit matching, weight-only fake-quant evaluation as plain evaluation.
"""

from __future__ import annotations

from functools import lru_cache

from study.work import (CHANNEL_PRUNED, SEED, Evaluation, PlanSettings, StageWork,
                        Training, baseline_job, calibrations, finetune_job, qat_job, readings, training_of)


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


def _jobs(stage, s: PlanSettings) -> list[Training]:
    """The trainings of the jobs ``stage`` runs (its declared ``jobs`` over its arguments)."""
    return [training_of(stage.name, job, s) for job in stage.jobs(stage.arguments(s.profile), s)]


def _final(stage: str, kind_name: str, s: PlanSettings) -> Training:
    """``pruning.study.get_final`` at ``FINAL_TARGET``: the cached pruned VGG-11."""
    from pruning.study import FINAL_TARGET, final_name

    model = CHANNEL_PRUNED if kind_name == "structured" else "vgg11"
    return finetune_job(stage, final_name(kind_name, FINAL_TARGET, SEED), model, s, cached=True)


def _finals(stage: str, s: PlanSettings) -> list[Training]:
    return [baseline_job(stage, "vgg11", s), _final(stage, "unstructured", s), _final(stage, "structured", s)]


# ----------------------------------------------------------------------------- baselines, pruning


def baselines(stage, s: PlanSettings) -> StageWork:
    """common.train: its baseline jobs."""
    return StageWork(_jobs(stage, s))


def _kind(stage):
    from pruning.study import STRUCTURED, UNSTRUCTURED

    return UNSTRUCTURED if "unstructured" in stage.name else STRUCTURED


def pruning_sensitivity(stage, s: PlanSettings) -> StageWork:
    """pruning/01 and 03: the baseline on validation, then every layer (01: conv and linear,
    03: conv) at every value of the script's ``--grid``."""
    from pruning.study import UNSTRUCTURED

    kind = _kind(stage)
    layers, convs = _layer_counts("vgg11")
    swept = layers if kind is UNSTRUCTURED else convs
    grid = len(set(stage.arguments(s.profile).grid))
    return StageWork([baseline_job(stage.name, "vgg11", s)], [
        readings(stage.name, "baseline", "vgg11", 1, s, splits="val"),
        readings(stage.name, f"{swept} layers x {grid} {kind.x_key} values", "vgg11", swept * grid, s, splits="val")])


def pruning_final(stage, s: PlanSettings) -> StageWork:
    """pruning/02 and 04: the pruned model at the script's target (cached by name); the rule
    reads the baseline's validation top-1 once."""
    from pruning.study import final_name

    kind = _kind(stage)
    target = getattr(stage.arguments(s.profile), kind.target_key)
    model = CHANNEL_PRUNED if kind.name == "structured" else "vgg11"
    return StageWork([baseline_job(stage.name, "vgg11", s),
                      finetune_job(stage.name, final_name(kind.name, target, SEED), model, s, cached=True)],
                     [readings(stage.name, "equal-drop rule: baseline", "vgg11", 1, s, splits="val")])


def pruning_cached_models(stage, s: PlanSettings) -> StageWork:
    """pruning/05 and 07: the three cached models; nothing that counts is evaluated."""
    return StageWork(_finals(stage.name, s))


def pruning_compare(stage, s: PlanSettings) -> StageWork:
    """pruning/06: the three cached models, each read on test and validation (its latency
    session is not counted)."""
    return StageWork(_finals(stage.name, s), [
        readings(stage.name, f"{name} model", model, 1, s)
        for name, model in (("original", "vgg11"), ("unstructured", "vgg11"), ("structured", CHANNEL_PRUNED))])


def pruning_accuracy_vs_sparsity(stage, s: PlanSettings) -> StageWork:
    """pruning/08: one fine-tune per target of the script (not cached), the rule's baseline
    reading and the baseline's test top-1."""
    a = stage.arguments(s.profile)
    jobs = [baseline_job(stage.name, "vgg11", s)] + [
        finetune_job(stage.name, f"sparsity {t:.2f}", "vgg11", s, cached=False, epochs=a.finetune_epochs)
        for t in sorted(a.targets)]
    return StageWork(jobs, [readings(stage.name, "equal-drop rule: baseline", "vgg11", 1, s, splits="val"),
                            readings(stage.name, "baseline", "vgg11", 1, s, splits="test")])


# ----------------------------------------------------------------------------- quantization


def quantization_ptq(stage, s: PlanSettings) -> StageWork:
    """quantization/01: the PTQ rows of ``quantization.formats`` on validation and test, and
    their calibrations."""
    from quantization.formats import PTQ_ACTIVATION_SCHEMES, PTQ_CALIBRATIONS, PTQ_PLAIN_ROWS

    n = stage.name
    return StageWork([baseline_job(n, "vgg11", s)], [
        readings(n, "PTQ rows with a plain forward", "vgg11", len(PTQ_PLAIN_ROWS), s),
        readings(n, "PTQ rows with activation fake-quant", "vgg11", len(PTQ_ACTIVATION_SCHEMES), s,
                 variant="fake-quant"),
        calibrations(n, "activation ranges and PT2E", PTQ_CALIBRATIONS, s)])


def quantization_qat(stage, s: PlanSettings) -> StageWork:
    """quantization/02: one QAT run per format of ``QAT_FORMATS`` (the script's --epochs, else the
    profile's finetune_epochs), validation every epoch and a test reading after; PTQ readings
    first; the int8 model converted and read at the end."""
    from quantization.formats import QAT_FORMATS

    n = stage.name
    epochs = stage.arguments(s.profile).epochs or s.profile.finetune_epochs
    jobs = [baseline_job(n, "vgg11", s)] + [
        qat_job(n, f"qat-{fmt}", "vgg11", variant, epochs, s, validate=True, readings=1)
        for fmt, variant in QAT_FORMATS.items()]
    plain = [f for f, variant in QAT_FORMATS.items() if variant != "fake-quant"]
    fake = [f for f, variant in QAT_FORMATS.items() if variant == "fake-quant"]
    return StageWork(jobs, [
        readings(n, f"PTQ readings of {', '.join(plain)}", "vgg11", len(plain), s),
        readings(n, "PTQ readings through fake-quant", "vgg11", len(fake), s, variant="fake-quant"),
        readings(n, "converted int8 after QAT", "vgg11", 1, s),
        calibrations(n, "int4 ranges and int8 PT2E", 2, s)])


def quantization_scaling_law(stage, s: PlanSettings) -> StageWork:
    """quantization/03: weight-only PTQ of every model (with --with-pruned also the
    channel-pruned VGG-11) at every spec of ``sweep_specs``, read on validation and test; QAT of
    VGG-11 at the --qat-bits specs for --qat-epochs, read on validation and test after."""
    from quantization.scaling_law import sweep_specs

    n, d = stage.name, stage.arguments(s.profile)
    models = list(d.models) + ([CHANNEL_PRUNED] if d.with_pruned else [])
    specs = len(sweep_specs(tuple(d.bits)))
    jobs = [baseline_job(n, m, s) for m in d.models]
    if CHANNEL_PRUNED in models:
        jobs.append(_final(n, "structured", s))
    jobs += [qat_job(n, f"qat-{spec.label}", "vgg11", "fake-quant", d.qat_epochs, s, validate=False, readings=0)
             for spec in (sweep_specs(tuple(d.qat_bits))[:-1] if d.qat_bits else [])]
    evaluations = [readings(n, f"{m} PTQ sweep", m, specs, s) for m in models]
    qat_runs = sum(1 for j in jobs if j.variant == "fake-quant")
    if qat_runs:
        evaluations.append(readings(n, "after QAT (weight fake-quant)", "vgg11", qat_runs, s))
    return StageWork(jobs, evaluations)


def quantization_mixed_precision(stage, s: PlanSettings) -> StageWork:
    """quantization/04: Hutchinson traces (--hutchinson-samples Hessian-vector products over
    --hessian-images validation images, priced as training steps), input moments on the
    calibration set, every simulated configuration and the real-kernel rows on validation and
    test, and the int8 calibrations."""
    from quantization.mixed_precision import INT8_CALIBRATIONS, REAL_KERNEL_CONFIGS

    n, d = stage.name, stage.arguments(s.profile)
    images = min(d.hessian_images, s.sizes.val)
    return StageWork([baseline_job(n, "vgg11", s)], [
        Evaluation(n, f"Hutchinson traces ({d.hutchinson_samples + 1} passes x {images} images)", "vgg11",
                   (d.hutchinson_samples + 1) * images, training_pass=True),
        calibrations(n, "input moments", 1, s),
        readings(n, "simulated configurations", "vgg11", _mixed_precision_configs(tuple(d.low_bits)), s),
        readings(n, "real-kernel rows", "vgg11", len(REAL_KERNEL_CONFIGS), s),
        calibrations(n, "int8 PT2E", INT8_CALIBRATIONS, s)])


def quantization_outliers(stage, s: PlanSettings) -> StageWork:
    """quantization/05: statistics on the calibration set; every quantizer x bits x scope on
    test (activation scopes through fake-quant, each calibrated); one layer at a time at int4
    (weights, then inputs: a one-layer activation quantizer is priced as plain, and calibrates)."""
    from quantization.outliers import BITS, PER_LAYER_QUANTIZERS, QUANTIZERS, SCOPES

    n = stage.name
    layers, _ = _layer_counts("vgg11")
    act_scopes = [sc for sc in SCOPES if "activations" in sc]
    per_scope = len(BITS) * len(QUANTIZERS)
    return StageWork([baseline_job(n, "vgg11", s)], [
        calibrations(n, "input statistics", 1, s),
        readings(n, "weight-only quantizers", "vgg11", per_scope * (len(SCOPES) - len(act_scopes)), s,
                 splits="test"),
        readings(n, "quantizers on activations", "vgg11", per_scope * len(act_scopes), s,
                 variant="fake-quant", splits="test"),
        calibrations(n, "activation quantizers", per_scope * len(act_scopes), s),
        readings(n, "per layer, baseline", "vgg11", 1 + layers * 2 * len(PER_LAYER_QUANTIZERS), s, splits="test"),
        calibrations(n, "per-layer activation quantizers", layers * len(PER_LAYER_QUANTIZERS), s)])


# ----------------------------------------------------------------------------- distillation, combined


def _students(s: PlanSettings, seeds=None) -> list[Training]:
    """The trainings of distillation/01 (its stage's jobs; ``seeds`` narrows them, e.g. to the
    seed-0 students that later stages read)."""
    trainings = _jobs(s.stage("distillation/01_students"), s)
    return [t for t in trainings if seeds is None or t.name.endswith(tuple(f"_seed{x}" for x in seeds))]


def distillation_students(stage, s: PlanSettings) -> StageWork:
    """distillation/01: the teacher baseline and every student job of the stage."""
    return StageWork([baseline_job(stage.name, stage.arguments(s.profile).teacher, s)] + _jobs(stage, s))


def distillation_cached_students(stage, s: PlanSettings) -> StageWork:
    """distillation/03: cached students (seed 0) and teacher; Grad-CAM of a few dozen images (not counted)."""
    from distillation.study import TEACHER

    return StageWork([baseline_job(stage.name, TEACHER, s)] + _students(s, [SEED]))


def distillation_alignment(stage, s: PlanSettings) -> StageWork:
    """distillation/02: every student (cached, seed 0) and its teacher on test."""
    from distillation.study import STUDENTS, TEACHER

    work = distillation_cached_students(stage, s)
    work.evaluations += [readings(stage.name, "students", "vgg11", len(STUDENTS), s, splits="test"),
                         readings(stage.name, "teacher, once per student", TEACHER, len(STUDENTS), s, splits="test")]
    return work


def distillation_colour(stage, s: PlanSettings) -> StageWork:
    """distillation/04: the colour-jitter teacher (a fine-tune, trained in the stage's process),
    then the stage's student jobs; every model on clean and colour-jittered test images."""
    a, z, p = stage.arguments(s.profile), s.sizes, s.profile
    colour = Training(stage.name, f"{a.teacher}_colour_seed{SEED}", a.teacher, p.finetune_epochs, z.per_epoch,
                      eval_images=p.finetune_epochs * z.val + z.test)
    return StageWork([baseline_job(stage.name, a.teacher, s), colour] + _jobs(stage, s), [
        readings(stage.name, "T and T_colour, clean and jittered", a.teacher, 4, s, splits="test"),
        readings(stage.name, "students, clean and jittered", "vgg11", 2 * (1 + 2 * len(a.methods)), s, splits="test")])


def distillation_teacher_size(stage, s: PlanSettings) -> StageWork:
    """distillation/05: each teacher's baseline and the stage's student jobs; alignment on test."""
    a = stage.arguments(s.profile)
    evaluations = [readings(stage.name, "students", "vgg11", len(a.teachers), s, splits="test")]
    evaluations += [readings(stage.name, f"teacher {t}", t, 1, s, splits="test") for t in a.teachers]
    return StageWork([baseline_job(stage.name, t, s) for t in a.teachers] + _jobs(stage, s), evaluations)


def combined_pipelines(stage, s: PlanSettings) -> StageWork:
    """combined/01: each pipeline of the script from its cached start model; each step's declared
    training (the pruning fine-tune validates, QAT does not) and calibration, every stage model
    read on validation and test (simulated int4 stages through fake-quant)."""
    from combined.pipelines import PIPELINES
    from distillation.study import TEACHER, study_student_name

    n = stage.name
    kd = study_student_name("kd", SEED, TEACHER)     # the KD student its pipelines start from
    work = StageWork([*_finals(n, s), baseline_job(n, TEACHER, s)] + [t for t in _students(s, [SEED]) if t.name == kd])
    epochs = s.profile.finetune_epochs
    for name in stage.arguments(s.profile).pipelines:
        start, steps = PIPELINES[name]
        work.evaluations.append(readings(n, f"{name} stage 0", start.model, 1, s))
        for index, step in enumerate(steps, start=1):
            job_name = f"{name}_{index}"
            if step.trains == "finetune":
                work.evaluations.append(readings(n, f"{job_name} rule: baseline", "vgg11", 1, s, splits="val"))
                work.jobs.append(finetune_job(n, job_name, start.model, s, cached=False))
            elif step.trains:
                work.jobs.append(qat_job(n, job_name, start.model, step.trains, epochs, s, validate=False, readings=0))
            if step.calibrates:
                work.evaluations.append(calibrations(n, job_name, 1, s, start.model))
            variant = "fake-quant" if step.reads_through_fake_quant else "plain"
            work.evaluations.append(readings(n, f"{job_name} ({step.kind})", start.model, 1, s, variant=variant))
    return work


def combined_pareto(stage, s: PlanSettings) -> StageWork:
    """combined/02: reads the CSVs; cached models for its latency session (not counted)."""
    return StageWork([baseline_job(stage.name, "vgg11", s), _final(stage.name, "structured", s)])

