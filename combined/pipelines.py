"""Combined compression: the study's techniques composed on one model, every stage measured.

A pipeline is a list of steps; each step takes the previous stage's model and returns the next
``Stage``. Every stage is measured the same way (``stage_row``): validation and test top-1, the
bytes of a real file in the format a deployment would use, and, where a real kernel runs the
format, batch-256 latency compiled with Inductor freezing (int8 stages count their int8
kernels); the latencies of all pipelines are timed together in one interleaved session
(``run_pipelines``). Simulated formats get no latency.

The pipelines:
- ``kd_prune_int8``: KD student -> 70% unstructured magnitude pruning (the per-layer ratios the
  pruning study chose for the VGG-11 baseline on validation) + fine-tune -> int8 PTQ (torchao
  PT2E). Files: fp32 state_dict, bitmask + non-zero fp32 values, the saved int8 program (its
  zeros stored as int8 codes: the file that is scored, not a sparse container).
- ``structured_int8_qat``: the pruning study's 70% channel-pruned VGG-11 -> int8 QAT (PT2E).
- ``kd_int4_qat``: KD student -> W4A4 PTQ -> W4A4 QAT (simulated: no int4 conv kernel on CPU).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from combined.names import PIPELINE_NAMES
from common.baselines import get_baseline
from common.checkpoints import checkpoint_path
from common.cli import RunContext
from common.measure import count_macs, saved_size_bytes
from common.models import VGG, architecture_id, count_parameters
from common.training import module_device
from common.timing import InferenceCompiled, Timed, new_session_id, one_session, time_interleaved
from distillation.study import get_teacher, study_student
from pruning.methods import overall_sparsity, to_bitmask_state
from pruning.study import UNSTRUCTURED, get_structured_final, prune_unstructured_and_finetune, ratio_rule
from quantization.fake_quant import uniform_config
from quantization.formats import simulated_schemes
from quantization.pt2e import (compile_int8, convert_int8, load_int8_program, prepare_int8_qat, quantize_int8_pt2e,
                               save_int8_program)
from quantization.quantizers import QuantSpec
from quantization.storage import save_weight_quantized
from quantization.study import (accuracy_columns, calibration_batches, latency_batch, qat_finetune,
                                quantized_copy)

TASK = "combined"
UNSTRUCTURED_TARGET = 0.7


@dataclass
class Stage:
    """One model of a pipeline. ``weights`` is the eager model whose weights are stored (for
    int8 PT2E stages, the float model holding the same weights as the converted graph);
    ``runner`` is what is evaluated and timed (the converted graph, or ``weights`` itself)."""

    step: str
    weights: nn.Module
    runner: nn.Module
    size_bytes: int
    size_format: str
    simulated: bool
    int8: bool = False           # runner is a converted PT2E int8 graph


def _file(ctx: RunContext, name: str):
    folder = checkpoint_path(ctx.dataset, ctx.profile.name, "combined").with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.pt"


def fp32_stage(ctx: RunContext, step: str, model: nn.Module, name: str) -> Stage:
    """A float model as it is: its dense fp32 state_dict on disk."""
    size = saved_size_bytes(model.state_dict(), _file(ctx, name))
    return Stage(step, model, model, size, "fp32 state_dict", False)


def pruned_stage(ctx: RunContext, model: VGG, name: str) -> Stage:
    """The KD student pruned to 70% overall sparsity with the pruning study's per-layer ratios
    (chosen for the baseline VGG-11 on validation) and fine-tuned (profile's finetune_epochs)."""
    base, _ = get_baseline(ctx, "vgg11")
    rule, _ = ratio_rule(ctx, UNSTRUCTURED, base)
    ratios, _ = rule(UNSTRUCTURED_TARGET)
    pruned, metrics = prune_unstructured_and_finetune(model, ctx, ratios, desc=name)
    print(f"[combined] {name}: overall sparsity {metrics['overall_sparsity']:.3f}")
    size = saved_size_bytes(to_bitmask_state(pruned.state_dict()), _file(ctx, name))
    return Stage(f"prune {UNSTRUCTURED_TARGET:.0%} unstructured + fine-tune", pruned, pruned, size,
                 "bitmask + non-zero fp32 values", False)


def int8_program_stage(ctx: RunContext, step: str, weights: nn.Module, converted: torch.fx.GraphModule,
                       example: torch.Tensor, name: str) -> Stage:
    """The converted int8 graph saved as a ``torch.export`` program (``save_int8_program``) and
    read back: the file is what the row's size, accuracy and latency describe. ``weights`` is the
    float model with the same weights (its sparsity and architecture go in the row)."""
    path = _file(ctx, name).with_suffix(".pt2")
    size = save_int8_program(converted, example, path)
    return Stage(step, weights, load_int8_program(path), size,
                 "torch.export int8 program (int8 codes, scales, zero points; zeros stored)", False, int8=True)


def int8_ptq_stage(ctx: RunContext, model: nn.Module, name: str) -> Stage:
    """Static W8A8 PTQ via torchao PT2E (calibrated on training images), saved and scored as its
    int8 program file (``int8_program_stage``)."""
    calibration = calibration_batches(ctx)
    converted = quantize_int8_pt2e(model, calibration[0], calibration)
    return int8_program_stage(ctx, "int8 PTQ (PT2E)", model, converted, calibration[0], name)


def int8_qat_stage(ctx: RunContext, model: nn.Module, name: str) -> Stage:
    """W8A8 QAT via PT2E (profile's finetune_epochs), converted to a real int8 graph (BatchNorm
    folded into the int8 convolutions) and saved and scored as its program file. The trained
    weights are copied back into a float copy of ``model`` (the prepared graph keeps the
    state_dict names) for the row's sparsity and architecture."""
    calibration = calibration_batches(ctx)
    prepared = prepare_int8_qat(copy.deepcopy(model), calibration[0])
    qat_finetune(prepared, ctx, ctx.profile.finetune_epochs, desc=name, bf16=False, eval_split=None)
    trained = copy.deepcopy(model)
    missing = trained.load_state_dict(prepared.state_dict(), strict=False).missing_keys
    if missing:
        raise RuntimeError(f"QAT graph lost weights {missing[:3]}...")
    return int8_program_stage(ctx, "int8 QAT (PT2E)", trained.eval(), convert_int8(prepared, model, calibration[0]),
                              calibration[0], name)


def int4_ptq_stage(ctx: RunContext, model: nn.Module, name: str) -> Stage:
    """W4A4 fake-quant (int4 per-channel weights, int4 activations clipped at p99.99), stored as
    packed int4 codes; simulated (fp32 arithmetic on rounded values)."""
    quantized = quantized_copy(model, simulated_schemes(model)["int4"], ctx)
    size = save_weight_quantized(quantized, uniform_config(quantized, QuantSpec(4)), _file(ctx, name))
    return Stage("int4 W4A4 PTQ", quantized, quantized, size, "packed int4 codes, fp16 scales/BN", True)


def int4_qat_stage(ctx: RunContext, quantized: nn.Module, name: str) -> Stage:
    """QAT of a W4A4 fake-quant model (``int4_ptq_stage``'s) for the profile's finetune_epochs."""
    model = copy.deepcopy(quantized)
    qat_finetune(model, ctx, ctx.profile.finetune_epochs, desc=name, eval_split=None)
    model.eval()
    size = save_weight_quantized(model, uniform_config(model, QuantSpec(4)), _file(ctx, name))
    return Stage("int4 W4A4 QAT", model, model, size, "packed int4 codes, fp16 scales/BN", True)


def stage_row(ctx: RunContext, pipeline: str, index: int, stage: Stage) -> tuple[dict, Timed | None]:
    """pipelines.csv row of ``stage`` -- validation and test top-1 (%), real file bytes, non-zero
    fraction of the stored weights -- and what to time for it (None for simulated formats).
    Int8 stages run compiled with Inductor freezing; a stage whose compilation lowered no int8
    kernel is labelled simulated."""
    # int8 programs are evaluated as they are deployed (int8 kernels); float models eagerly
    runner = compile_int8(stage.runner) if stage.int8 else InferenceCompiled(stage.runner)
    row = {"pipeline": pipeline, "stage": index, "step": stage.step,
           **accuracy_columns(runner if stage.int8 else stage.runner, ctx),
           "size_bytes": stage.size_bytes, "size_format": stage.size_format,
           "weight_sparsity": round(overall_sparsity(stage.weights), 4) if isinstance(stage.weights, VGG)
           else "", "simulated": "yes" if stage.simulated else "no",
           "architecture": architecture_id(stage.weights) if isinstance(stage.weights, VGG) else "",
           "params": count_parameters(stage.weights), "macs": count_macs(stage.weights),
           "runs_as": "" if stage.simulated else "int8" if stage.int8 else "fp32"}
    if stage.int8 and runner.int8_kernels() == 0:
        row.update(simulated="yes", runs_as="")
    print(f"[combined] {pipeline} stage {index} {stage.step}: top-1 {row['top1_acc']:.2f}%, "
          f"{stage.size_bytes:,} B")
    if row["simulated"] == "yes":
        row.update(latency_ms="", kernel="none (simulated format)")
        return row, None
    return row, Timed(runner, latency_batch(ctx).to(module_device(runner)))


Step = Callable[[RunContext, nn.Module, str], Stage]

CHANNEL_PRUNED = "vgg11-channel-pruned"   # the 70% channel-pruned VGG-11, named as study names it (no import of study)


@dataclass(frozen=True)
class PipelineStart:
    """Stage 0 of a pipeline: its ``label`` (the row's step), the architecture ``model`` that
    ``load`` returns ("vgg11", or ``CHANNEL_PRUNED``), and ``load`` itself (a cached model,
    trained if missing)."""

    label: str
    model: str
    load: Callable[[RunContext], nn.Module]


@dataclass(frozen=True)
class PipelineStep:
    """A pipeline step: ``apply(ctx, previous stage's weights, file name)`` makes the next
    ``Stage``. What it does, declared for readers such as ``study.plan``:
    - ``trains``: "finetune" (the pruning fine-tune, validation every epoch), "pt2e-qat" (PT2E
      int8 QAT), "fake-quant" (QAT through this study's fake-quantizers), "" (no training);
    - ``calibrates``: one pass over ``calibration_batches`` sets activation ranges;
    - ``reads_through_fake_quant``: its stage is simulated (read through fake-quantizers)."""

    kind: str
    apply: Step
    trains: str = ""
    calibrates: bool = False
    reads_through_fake_quant: bool = False


def kd_student(ctx: RunContext) -> VGG:
    """The cached logit-matching (KD) student of the distillation study (trained if missing)."""
    teacher, teacher_meta = get_teacher(ctx)
    return study_student(ctx, "kd", teacher, teacher_meta)[0]


def channel_pruned(ctx: RunContext) -> VGG:
    """The pruning study's cached 70% channel-pruned VGG-11 (made if missing)."""
    return get_structured_final(ctx)[0]


KD_STUDENT = PipelineStart("KD student (from VGG-16)", "vgg11", kd_student)
CHANNEL_PRUNED_VGG11 = PipelineStart("70% channel-pruned VGG-11", CHANNEL_PRUNED, channel_pruned)

# The step kinds. int8 QAT prepares its graph from one example batch (no calibration pass: the
# fake-quantizers' ranges are learned in training); int4 QAT starts from the calibrated int4 PTQ model.
PRUNED = PipelineStep("pruned", pruned_stage, trains="finetune")
INT8_PTQ = PipelineStep("int8_ptq", int8_ptq_stage, calibrates=True)
INT8_QAT = PipelineStep("int8_qat", int8_qat_stage, trains="pt2e-qat")
INT4_PTQ = PipelineStep("int4_ptq", int4_ptq_stage, calibrates=True, reads_through_fake_quant=True)
INT4_QAT = PipelineStep("int4_qat", int4_qat_stage, trains="fake-quant", reads_through_fake_quant=True)
STEP_KINDS: dict[str, PipelineStep] = {step.kind: step for step in (PRUNED, INT8_PTQ, INT8_QAT, INT4_PTQ, INT4_QAT)}

# Pipeline name (combined.names.PIPELINE_NAMES, in its order) -> (start, the steps applied in order).
PIPELINES: dict[str, tuple[PipelineStart, list[PipelineStep]]] = dict(zip(PIPELINE_NAMES, (
    (KD_STUDENT, [PRUNED, INT8_PTQ]),               # kd_prune_int8
    (CHANNEL_PRUNED_VGG11, [INT8_QAT]),             # structured_int8_qat
    (KD_STUDENT, [INT4_PTQ, INT4_QAT]),             # kd_int4_qat
), strict=True))


def run_pipeline(ctx: RunContext, name: str) -> tuple[list[dict], dict[str, Timed]]:
    """Run pipeline ``name`` from its start model: one row per stage (stage 0 = start) and, by
    '<pipeline>/<stage>', the stages to time (those on real kernels)."""
    start, steps = PIPELINES[name]
    stage = fp32_stage(ctx, start.label, start.load(ctx).eval(), f"{name}_0")
    rows, timed = [], {}
    for index in range(len(steps) + 1):
        if index:
            stage = steps[index - 1].apply(ctx, stage.weights, f"{name}_{index}")
        row, to_time = stage_row(ctx, name, index, stage)
        rows.append(row)
        if to_time is not None:
            timed[f"{name}/{index}"] = to_time
    return rows, timed


def run_pipelines(ctx: RunContext, names: list[str], rounds: int) -> list[dict]:
    """Every pipeline in ``names``, then the latency of all their real-kernel stages, timed
    together (``common.timing``, batch 256); latency_ms holds the readings of the run device's
    session only (``one_session``)."""
    rows, timed = [], {}
    for name in names:
        pipeline_rows, pipeline_timed = run_pipeline(ctx, name)
        rows += pipeline_rows
        timed.update(pipeline_timed)
    latencies = time_interleaved(timed, new_session_id("pipelines"), rounds=rounds)
    for row in rows:
        row.update(latencies.get(f"{row['pipeline']}/{row['stage']}", {}))
    rows = one_session(rows)    # a GPU run's CPU-only int8 readings move to other_session_latency_ms
    for row in rows:
        print(f"[combined] {row['pipeline']} stage {row['stage']}: latency {row['latency_ms']} ms ({row['kernel']})")
    torch._dynamo.reset()
    return rows
