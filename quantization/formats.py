"""Experiments 1 and 2: the trained VGG-11 at fp16, bf16, int8 and int4, post-training (PTQ) and
quantization-aware fine-tuned (QAT).

The formats, and where their numbers come from:
- fp16 / bf16: the model cast to the dtype, real kernels (``InputCast`` feeds it that dtype),
  eager and under ``torch.compile``: int8's speed-up is read against the fastest float format
  timed in its session (``quantization.speedup``), not against fp32 alone.
- int8: static W8A8 through torchao PT2E (per-channel weights, per-tensor activations); PTQ and
  QAT (``prepare_qat_pt2e``); accuracy and latency of the converted model compiled with Inductor
  freezing (``compile_int8``), which lowers it to int8 oneDNN kernels; the number of int8 kernels
  is counted and the row is labelled simulated if there were none. A simulated W8A8 of this study's own
  fake-quantizers is reported beside it as a check of the simulator.
- int4: torchao's ``IntxWeightOnlyConfig`` (real int4 values, stored unpacked in int8 and
  dequantized for an fp32 conv: torchao has no int4 conv kernel; its ``PerAxis(0)`` on a 4-D conv
  weight is a block of 1 x C_in x 1 x 1, one scale per output channel *and* kernel tap, unlike
  this study's one scale per output channel), this study's packed weight-only
  int4, and W4A4 (int4 per-channel weights, int4 per-tensor activations clipped at the 99.99th
  percentile), which is simulated and is the int4 format QAT trains.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn
from torchao.quantization import IntxWeightOnlyConfig, quantize_
from torchao.quantization.granularity import PerAxis

from common.cli import RunContext
from common.curves import curve_rows
from common.models import VGG
from common.training import module_device, trained_seconds
from common.timing import InferenceCompiled, Timed, new_session_id, one_session, time_interleaved
from quantization.activations import ActSpec
from quantization.fake_quant import Scheme, apply_scheme, uniform_config, uniform_scheme
from quantization.pt2e import (activation_grid, activation_range_note, compile_int8, convert_int8, int8_program,
                               prepare_int8_qat, quantize_int8_pt2e)
from quantization.quantizers import QuantSpec
from quantization.speedup import FP32_COMPILED_SCHEME, INT8_SCHEME
from quantization.study import (accuracy_columns, calibration_batches, latency_batch, qat_finetune,
                                quantized_copy, quantized_dir, quantized_file_bytes, state_dict_bytes, test_top1)

INT4_ACT_PERCENTILE = 99.99
WITHIN_POINTS = 0.5      # "recovered": within this many points of fp32

QAT_FORMATS: dict[str, str] = {   # qat_curves' formats, in order -> the training each runs
    "fp32": "plain",                # the fine-tune control, no quantizer
    "fp16": "fake-quant", "bf16": "fake-quant", "int4": "fake-quant",   # simulated_schemes' entries
    "int8": "pt2e-qat",             # PT2E int8 QAT (PTQ read first, converted and read after)
}


@dataclass(frozen=True)
class PtqRow:
    """A row of ``ptq_rows``: its ``name`` (for a fake-quant row, its ``simulated_schemes`` key),
    how its model runs a forward -- "plain" (real kernels, or fp32 convs on rounded weights; no
    activation fake-quantizers) or "fake-quant" (activations fake-quantized) -- and whether making
    it runs one calibration pass over ``calibration_batches``."""

    name: str
    forward: str = "plain"
    calibrates: bool = False


PTQ_ROWS: tuple[PtqRow, ...] = (   # ptq_rows' rows, in table order: the function iterates over these
    PtqRow("fp32"), PtqRow("fp32-compiled"), PtqRow("fp16"), PtqRow("bf16"),
    PtqRow("fp16-compiled"), PtqRow("bf16-compiled"),      # int8's speed-up is read against the fastest float
    PtqRow("int8-pt2e", calibrates=True),                  # torchao PT2E static W8A8: observers calibrated
    PtqRow("int8-sim", "fake-quant", calibrates=True),     # the simulator's W8A8 check
    PtqRow("int4-torchao"), PtqRow("int4-weight-only"),
    PtqRow("int4", "fake-quant", calibrates=True),         # W4A4
)
PTQ_PLAIN_ROWS: tuple[str, ...] = tuple(r.name for r in PTQ_ROWS if r.forward == "plain")
PTQ_ACTIVATION_SCHEMES: tuple[str, ...] = tuple(r.name for r in PTQ_ROWS if r.forward == "fake-quant")
PTQ_CALIBRATIONS: int = sum(r.calibrates for r in PTQ_ROWS)   # calibration passes of ptq_rows


class InputCast(nn.Module):
    """Runs ``model`` (already cast to ``dtype``) on inputs cast to ``dtype``; float32 logits out."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype)).float()


def cast_model(model: nn.Module, dtype: torch.dtype) -> InputCast:
    """A copy of ``model`` with every parameter and buffer in ``dtype`` (real 16-bit kernels)."""
    return InputCast(copy.deepcopy(model).to(dtype), dtype).eval()


def simulated_schemes(model: nn.Module) -> dict[str, Scheme]:
    """The study's fake-quant formats by name (weights and activations of every conv/linear)."""
    return {
        "fp16": uniform_scheme(model, QuantSpec(16, dtype="float16"), ActSpec(16, "float16")),
        "bf16": uniform_scheme(model, QuantSpec(16, dtype="bfloat16"), ActSpec(16, "bfloat16")),
        "int8-sim": uniform_scheme(model, QuantSpec(8), ActSpec(8)),
        "int4-weight-only": uniform_scheme(model, QuantSpec(4)),
        "int4": uniform_scheme(model, QuantSpec(4), ActSpec(4, clip_percentile=INT4_ACT_PERCENTILE)),
    }


def torchao_int4_weight_only(model: nn.Module) -> nn.Module:
    """A CPU copy with torchao ``IntxWeightOnlyConfig(int4, per output channel)`` on conv+linear
    (run on the CPU in every run: the path this study has verified)."""
    quantized = copy.deepcopy(model).cpu()
    quantize_(quantized, IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerAxis(0)),
              filter_fn=lambda module, _: isinstance(module, (nn.Conv2d, nn.Linear)))
    return quantized.eval()


def ptq_rows(base: VGG, ctx: RunContext, rounds: int) -> list[dict]:
    """One row per format: validation and test top-1, bytes of a real file, and, for formats with
    a real kernel, batch-256 latency; every latency of the table comes from one interleaved
    timing session (``common.timing``; a row timed in another session -- in a GPU run the
    CPU-only int8 backend -- keeps its reading in other_session_latency_ms). The PT2E int8 row
    is the saved converted program: its bytes, and the accuracy and latency of the model loaded
    back from it; it is 'real' only if Inductor lowered it to int8 kernels (counted), otherwise
    labelled simulated. The fake-quant check keeps this study's packed int8 file. The rows are
    ``PTQ_ROWS``, in that order: a row that calibrates gets ``calibration_batches``, a fake-quant
    row's model is its ``simulated_schemes`` entry, calibrated."""
    example = latency_batch(ctx)
    schemes = simulated_schemes(base)
    rows, timed = [], {}

    def row(fmt, scheme, weights, activations, model, size, simulated, kernel=None, runner=None,
            example_dtype=None):
        start = time.perf_counter()
        runner = runner or model
        r = {"format": fmt, "scheme": scheme, "weights": weights, "activations": activations,
             **accuracy_columns(runner, ctx), "size_bytes": size, "kernel": kernel or "",
             "simulated": "yes" if simulated else "no"}
        if isinstance(runner, InferenceCompiled) and "int8" in fmt and runner.int8_kernels() == 0:
            r["simulated"] = "yes"    # compiled, but Inductor lowered no int8 kernel: not a real int8 number
        if r["simulated"] == "no":
            x = example.to(module_device(runner))
            timed[len(rows)] = Timed(runner, x if example_dtype is None else x.to(example_dtype), kernel)
        print(f"[ptq] {fmt:18s} {scheme:28s} top-1 {r['top1_acc']:.2f}% ({time.perf_counter() - start:.0f}s)")
        rows.append(r)

    fp32_bytes = state_dict_bytes(base, ctx, "fp32")
    library = "cuDNN, TF32 off" if ctx.device.type == "cuda" else "oneDNN"   # common.numerics
    int4_file = {}     # the packed int4 weight file, shared by the two packed-int4 rows

    def fp32(_):
        row("fp32", "fp32 (eager)", "fp32", "fp32", base, fp32_bytes, False, f"fp32 conv ({library}), eager")

    def fp32_compiled(_):
        row("fp32", FP32_COMPILED_SCHEME, "fp32", "fp32", base, fp32_bytes, False,
            runner=InferenceCompiled(base))

    def cast(fmt, dtype):
        def build(_):
            model = cast_model(base, dtype)
            row(fmt, f"{fmt} cast", fmt, fmt, model, state_dict_bytes(model.model, ctx, fmt), False,
                f"{fmt} conv ({library}), eager", example_dtype=dtype)
        return build

    def cast_compiled(fmt, dtype):
        def build(_):
            model = cast_model(base, dtype)
            row(fmt, f"{fmt} cast (torch.compile)", fmt, fmt, model, state_dict_bytes(model.model, ctx, fmt), False,
                f"{fmt} (Inductor, {library})", runner=InferenceCompiled(model), example_dtype=dtype)
        return build

    def int8_pt2e(calibration):
        int8, program_bytes = int8_program(base, calibration, quantized_dir(ctx) / "int8_pt2e.pt2")  # scored as read back
        row("int8", INT8_SCHEME, "int8 per-channel", activation_grid(), int8,
            program_bytes, False, runner=compile_int8(int8))

    def int8_sim(model):
        row("int8", "W8A8 (fake-quant check)", "int8 per-channel", "int8 per-tensor (max)", model,
            quantized_file_bytes(base, uniform_config(base, QuantSpec(8)), ctx, "int8"), True, "fp32 simulation")

    def int4_torchao(_):
        torchao4 = torchao_int4_weight_only(base)
        row("int4", "W4 weight-only (torchao)", "int4 per-channel-and-tap", "fp32", torchao4,
            state_dict_bytes(torchao4, ctx, "int4_torchao"), False,
            "torchao IntxUnpackedToInt8Tensor (int4 held in int8, dequantized for an fp32 conv)")

    def int4_weight_only(_):
        int4_file["bytes"] = quantized_file_bytes(base, uniform_config(base, QuantSpec(4)), ctx, "int4")
        row("int4", "W4 weight-only (packed)", "int4 per-channel", "fp32",
            quantized_copy(base, schemes["int4-weight-only"], ctx), int4_file["bytes"], True, "fp32 simulation")

    def int4(model):
        row("int4", "W4A4", "int4 per-channel", f"int4 per-tensor (p{INT4_ACT_PERCENTILE:g})", model,
            int4_file["bytes"], True, "fp32 simulation")

    builders = {"fp32": fp32, "fp32-compiled": fp32_compiled, "fp16": cast("fp16", torch.float16),
                "bf16": cast("bf16", torch.bfloat16), "fp16-compiled": cast_compiled("fp16", torch.float16),
                "bf16-compiled": cast_compiled("bf16", torch.bfloat16), "int8-pt2e": int8_pt2e, "int8-sim": int8_sim,
                "int4-torchao": int4_torchao, "int4-weight-only": int4_weight_only, "int4": int4}
    if set(builders) != {spec.name for spec in PTQ_ROWS}:
        raise RuntimeError(f"PTQ_ROWS {[spec.name for spec in PTQ_ROWS]} do not match ptq_rows' rows {list(builders)}")
    for spec in PTQ_ROWS:
        calibration = calibration_batches(ctx) if spec.calibrates else None
        if spec.forward == "fake-quant":   # the simulated_schemes entry of that name, activation ranges calibrated
            builders[spec.name](apply_scheme(copy.deepcopy(base), schemes[spec.name], calibration).eval())
        else:
            builders[spec.name](calibration)
    latencies = time_interleaved({str(i): t for i, t in timed.items()}, new_session_id("ptq"), rounds=rounds)
    for i, r in enumerate(rows):
        r.update(latencies.get(str(i), {"latency_ms": "", "int8_kernels": ""}))
    rows = one_session(rows)
    for r in rows:
        print(f"[ptq] {r['format']:5s} {r['scheme']:28s} latency {r['latency_ms']} ms ({r['kernel']})")
    torch._dynamo.reset()
    return rows


def converted(how: str) -> str:
    """qat.csv's measured_on for a converted int8 model after PT2E ``how`` ('PTQ' or 'QAT'),
    naming the activation range where this CPU reduces it (``activation_range_note``)."""
    note = activation_range_note()
    return f"converted int8 (PT2E {how})" + (f"; {note}" if note else "")


def qat_curves(base: VGG, ctx: RunContext, epochs: int) -> tuple[list[dict], list[dict]]:
    """QAT from ``base`` at each format for ``epochs``: rows (format, epoch, val_top1_acc after
    every epoch, top1_acc on test for the PTQ model (epoch 0) and the final model only, how
    measured). An fp32 fine-tune of the same recipe is the control. Formats train at their own
    precision: bf16 autocast for the bf16 format and the fp32 control (the trainer's recipe),
    none for fp16 (its values would be bf16 otherwise) and int8 (PT2E graphs train in fp32).
    The formats are ``QAT_FORMATS``, in that order, each run by the training it names.
    Also returns every fine-tune's per-epoch training curve (``common.curves.curve_rows``, model
    ``qat-<format>``, with its format)."""
    rows, curves = [], []
    schemes = simulated_schemes(base)

    def record(fmt, epoch, val, test, how, seconds=0.0):
        rows.append({"format": fmt, "epoch": epoch, "val_top1_acc": val, "top1_acc": test,
                     "measured_on": how,
                     "simulated": "no" if how.startswith(("fp32", "converted")) else "yes",
                     "train_seconds": round(seconds, 1)})

    def run(fmt, model, how, bf16):
        history = qat_finetune(model, ctx, epochs, desc=f"qat-{fmt}", bf16=bf16)
        curves.extend(curve_rows(f"qat-{fmt}", history, format=fmt))
        for h in history:
            record(fmt, h["epoch"], h["val_top1_acc"], "", how, h["seconds"])
        rows[-1]["top1_acc"] = test_top1(model, ctx)
        return trained_seconds(history)

    def record_ptq(fmt, model, how):
        acc = accuracy_columns(model, ctx)
        record(fmt, 0, acc["val_top1_acc"], acc["top1_acc"], how)

    for fmt, training in QAT_FORMATS.items():
        if training == "plain":          # the fp32 control
            record_ptq(fmt, base, "fp32 model")
            run(fmt, copy.deepcopy(base), "fp32 model (fine-tune control)", bf16=True)
        elif training == "fake-quant":   # simulated_schemes' entry of that name
            model = quantized_copy(base, schemes[fmt], ctx)
            record_ptq(fmt, model, "fake-quant model")
            run(fmt, model, "fake-quant model", bf16=fmt != "fp16")
        elif training == "pt2e-qat":
            calibration = calibration_batches(ctx)
            record_ptq(fmt, compile_int8(quantize_int8_pt2e(base, calibration[0], calibration)),
                       converted("PTQ"))
            prepared = prepare_int8_qat(copy.deepcopy(base), calibration[0])
            seconds = run(fmt, prepared, "PT2E fake-quant graph (observers frozen for evaluation)", bf16=False)
            final = accuracy_columns(compile_int8(convert_int8(prepared, base, calibration[0])), ctx)
            rows[-1] = {**rows[-1], "val_top1_acc": final["val_top1_acc"], "top1_acc": final["top1_acc"],
                        "measured_on": converted("QAT"), "simulated": "no"}
            print(f"[qat] {fmt} PT2E QAT {seconds:.0f}s")
        else:
            raise ValueError(f"QAT_FORMATS[{fmt!r}]: unknown training {training!r}")
    torch._dynamo.reset()
    return rows, curves


def qat_summary(rows: list[dict]) -> list[dict]:
    """Per format: PTQ (epoch 0) and final test top-1, and the first epoch whose *validation*
    top-1 is within 0.5 point of the fp32 model's validation top-1 (empty when never reached)."""
    fp32 = next(r for r in rows if r["format"] == "fp32" and int(r["epoch"]) == 0)
    fp32_val = float(fp32["val_top1_acc"])
    out = []
    for fmt in dict.fromkeys(r["format"] for r in rows):
        curve = sorted((int(r["epoch"]), r) for r in rows if r["format"] == fmt)
        reached = [e for e, r in curve if float(r["val_top1_acc"]) >= fp32_val - WITHIN_POINTS]
        out.append({"format": fmt, "fp32_top1": float(fp32["top1_acc"]), "fp32_val_top1": fp32_val,
                    "ptq_top1": float(curve[0][1]["top1_acc"]), "qat_top1": float(curve[-1][1]["top1_acc"]),
                    "qat_epochs": curve[-1][0],
                    "epochs_to_within_half_point": reached[0] if reached else ""})
    return out

