"""Experiment 4: mixed precision -- per-layer weight bit widths under a size budget.

Three kinds of configurations (weight-only, per-channel integer formats, simulated):
(i) uniform k for every layer; (ii) the first conv and the classifier's last layer kept at
float16 and every other layer at k; (iii) adaptive bits per layer under the same total-bits
budget as (ii), from a per-layer sensitivity. Sensitivity follows HAWQ-v2: the expected loss
increase of quantizing layer l to b bits is Omega_l(b) = (Tr(H_l) / n_l) * ||Q_b(W_l) - W_l||^2,
with Tr(H_l) from Hutchinson's estimator on validation images. The activation-variance variant
replaces the Hessian term by the mean square of the layer's input, E[x^2] (a layer's output
error is about ||dW||^2 E[x^2] for independent inputs). Bits are allocated greedily: every layer
starts at the fewest bits, and the upgrade with the largest sensitivity drop per extra bit that
still fits the budget is taken until none fits.

These configurations are simulated (no mixed-bit conv kernel exists on the CPU). Beside them,
what the x86 int8 backend really runs: int8 everywhere, and rule (ii) as a real model -- the
first conv and the last linear fp32, every other layer int8 (the X86 quantizer's per-module
configuration) -- with real size, accuracy and latency.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from common.augment import BatchTransform
from common.cli import RunContext
from common.figures import paper_layer_names
from common.training import module_device
from quantization.fake_quant import apply_weight_quant, bake, observe_layer_inputs, quantizable_layers
from quantization.hessian import hutchinson_trace
from common.timing import InferenceCompiled, Timed, new_session_id, one_session, time_interleaved
from quantization.pt2e import compile_int8, int8_program
from quantization.quantizers import QuantSpec, quantize_dequantize, storage_bits
from quantization.storage import model_bits
from quantization.study import (accuracy_columns, calibration_batches, latency_batch,
                                quantized_dir, quantized_file_bytes, state_dict_bytes)

BIT_CHOICES = (2, 3, 4, 5, 6, 8)
HIGH = QuantSpec(16, dtype="float16")       # the "kept high" format of rule (ii)


@dataclass(frozen=True)
class RealKernelConfig:
    """A configuration ``real_kernel_rows`` runs on real kernels: its row's ``config`` and
    ``kind``, whether it is a PT2E int8 program (each calibrated once on the calibration set;
    else the fp32 model), whether the first conv and the last linear stay fp32 in it, and the
    stem of its file under ``quantized_dir``."""

    config: str
    kind: str
    int8: bool
    file: str
    first_last_fp32: bool = False


REAL_KERNEL_CONFIGS: tuple[RealKernelConfig, ...] = (   # real_kernel_rows' rows, in order
    RealKernelConfig("fp32", "real fp32", False, "fp32"),
    RealKernelConfig("int8 W8A8 (PT2E)", "real int8", True, "mixed_precision_int8"),
    RealKernelConfig("int8 W8A8 (PT2E), first/last fp32", "real int8, first/last fp32", True,
                     "mixed_precision_int8_first_last_fp32", first_last_fp32=True),
)
INT8_CALIBRATIONS: int = sum(c.int8 for c in REAL_KERNEL_CONFIGS)   # real_kernel_rows' PT2E calibration passes


def spec_for(bits: int) -> QuantSpec:
    """Per-channel integer weights at ``bits`` (16: float16)."""
    return HIGH if bits == 16 else QuantSpec(bits)


def config_from_bits(bits: dict[str, int]) -> dict[str, QuantSpec]:
    """layer -> bits  to  layer -> weight spec."""
    return {name: spec_for(b) for name, b in bits.items()}


def edge_layers(model: nn.Module) -> tuple[str, str]:
    """The first and the last quantizable layer (first conv, classifier output)."""
    names = list(quantizable_layers(model))
    return names[0], names[-1]


def uniform_bits(model: nn.Module, bits: int) -> dict[str, int]:
    return {name: bits for name in quantizable_layers(model)}


def edges_high_bits(model: nn.Module, bits: int) -> dict[str, int]:
    """Rule (ii): first conv and last layer at 16 (float16), the rest at ``bits``."""
    edges = edge_layers(model)
    return {name: 16 if name in edges else bits for name in quantizable_layers(model)}


def hessian_traces(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, dataset: str,
                   samples: int, seed: int = 0) -> dict[str, float]:
    """Hutchinson estimate of Tr(H) of the cross-entropy on (``images`` uint8 [N,3,32,32],
    ``labels`` [N]) w.r.t. each conv/linear weight (eval-mode BatchNorm, fp32)."""
    model.eval()
    layers = quantizable_layers(model)
    x = BatchTransform(dataset, channels_last=False)(images)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), labels)
        generator = torch.Generator(device=x.device).manual_seed(seed)
        traces = hutchinson_trace(loss, [m.weight for m in layers.values()], samples, generator)
    return dict(zip(layers, traces))


def input_second_moments(model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, float]:
    """Mean of x^2 over every element of each conv/linear layer's input, over ``batches``."""
    sums = {name: 0.0 for name in quantizable_layers(model)}
    counts = dict.fromkeys(sums, 0)

    def observe(name: str, x: torch.Tensor) -> None:
        sums[name] += float(x.float().pow(2).sum())
        counts[name] += x.numel()

    observe_layer_inputs(model, batches, observe)
    return {name: sums[name] / counts[name] for name in sums}


def quantization_errors(model: nn.Module, choices: Iterable[int]) -> dict[str, dict[int, float]]:
    """||Q_b(W) - W||^2 for each layer and bit width (16: float16 cast)."""
    weights = {name: m.weight.detach() for name, m in quantizable_layers(model).items()}
    return {name: {b: float((quantize_dequantize(w, spec_for(b)) - w).pow(2).sum()) for b in choices}
            for name, w in weights.items()}


def sensitivities(weight_term: dict[str, float], errors: dict[str, dict[int, float]]
                  ) -> dict[str, dict[int, float]]:
    """Omega_l(b) = weight_term[l] * errors[l][b]."""
    return {name: {b: weight_term[name] * e for b, e in errs.items()} for name, errs in errors.items()}


def allocate_bits(sensitivity: dict[str, dict[int, float]], layer_bits: Callable[[str, int], int],
                  budget_bits: int, fixed_bits: int = 0) -> dict[str, int]:
    """Greedy allocation: start every layer at its fewest bits, then repeatedly take the upgrade
    (layer, next width) with the largest sensitivity drop per extra stored bit that keeps
    ``fixed_bits + sum(layer_bits(layer, b))`` within ``budget_bits``. Raises ValueError when
    even the fewest bits do not fit."""
    bits = {name: min(options) for name, options in sensitivity.items()}
    used = fixed_bits + sum(layer_bits(n, b) for n, b in bits.items())
    if used > budget_bits:
        raise ValueError(f"budget {budget_bits} bits is below the smallest configuration ({used})")
    while True:
        best, best_gain = None, 0.0
        for name, options in sensitivity.items():
            for b in sorted(o for o in options if o > bits[name]):
                extra = layer_bits(name, b) - layer_bits(name, bits[name])
                gain = (options[bits[name]] - options[b]) / extra
                if used + extra <= budget_bits and gain > best_gain:
                    best, best_gain = (name, b, extra), gain
        if best is None:
            return bits
        name, b, extra = best
        bits[name], used = b, used + extra


def weight_bits_fn(model: nn.Module) -> Callable[[str, int], int]:
    """(layer, bits) -> stored bits of that layer's weight (codes and float16 scales)."""
    shapes = {name: m.weight.shape for name, m in quantizable_layers(model).items()}
    return lambda name, b: storage_bits(shapes[name], spec_for(b))


def other_tensor_bits(model: nn.Module) -> int:
    """Stored bits of everything that is not a conv/linear weight (kept at 16 bits)."""
    return model_bits(model, config_from_bits(uniform_bits(model, 16))) - sum(
        16 * m.weight.numel() for m in quantizable_layers(model).values())


def adaptive_bits(model: nn.Module, weight_term: dict[str, float], budget_bits: int,
                  choices: tuple[int, ...] = BIT_CHOICES + (16,)) -> dict[str, int]:
    """Rule (iii): per-layer bits minimising the summed sensitivity within ``budget_bits`` total."""
    omega = sensitivities(weight_term, quantization_errors(model, choices))
    return allocate_bits(omega, weight_bits_fn(model), budget_bits, other_tensor_bits(model))


def bits_string(bits: dict[str, int]) -> str:
    """'2-4-4-...' in layer order (16 = float16)."""
    return "-".join(str(b) for b in bits.values())


def sensitivity_rows(model: nn.Module, ctx: RunContext, hessian_images: int, samples: int
                     ) -> list[dict]:
    """hessian_trace.csv: per layer (module name, and the paper's name: conv1.., fc1..), params,
    Hutchinson Tr(H) on ``hessian_images`` validation images, Tr(H)/n, the input's mean square on
    calibration (train) images, and the int4 error."""
    images, labels = ctx.splits.val_images[:hessian_images], ctx.splits.val_labels[:hessian_images]
    traces = hessian_traces(model, images, labels, ctx.dataset, samples, ctx.seed)
    moments = input_second_moments(model, calibration_batches(ctx))
    errors = quantization_errors(model, (4,))
    layers = quantizable_layers(model)
    names = paper_layer_names(list(layers.items()))
    return [{"layer": name, "layer_name": names[name], "params": m.weight.numel(), "hessian_trace": traces[name],
             "hessian_trace_per_param": traces[name] / m.weight.numel(),
             "input_mean_square": moments[name], "int4_weight_sq_error": errors[name][4],
             "hutchinson_samples": samples, "hessian_images": len(images)}
            for name, m in layers.items()]


def configurations(model: nn.Module, sens_rows: list[dict], low_bits: Iterable[int]
                   ) -> list[tuple[str, str, dict[str, int]]]:
    """(config kind, name, layer -> bits) for rules (i), (ii) and both adaptive variants of
    (iii) at the size budget of (ii) for each k in ``low_bits``."""
    hessian = {r["layer"]: float(r["hessian_trace_per_param"]) for r in sens_rows}
    variance = {r["layer"]: float(r["input_mean_square"]) for r in sens_rows}
    configs = [("uniform", f"uniform int{k}", uniform_bits(model, k)) for k in (8, *low_bits)]
    for k in low_bits:
        edges = edges_high_bits(model, k)
        budget = model_bits(model, config_from_bits(edges))
        configs += [("first/last fp16", f"first/last fp16, rest int{k}", edges),
                    ("adaptive (Hessian)", f"adaptive Hessian @ budget of rest-int{k}",
                     adaptive_bits(model, hessian, budget)),
                    ("adaptive (activation variance)", f"adaptive act-var @ budget of rest-int{k}",
                     adaptive_bits(model, variance, budget))]
    return configs


def config_rows(model: nn.Module, ctx: RunContext, configs: list[tuple[str, str, dict[str, int]]],
                rounds: int) -> list[dict]:
    """mixed_precision.csv: per simulated configuration, the bits per layer, total bits, real file
    bytes, validation and test top-1 (no latency: no mixed-bit kernel exists, they run fp32 convs
    on dequantized weights); then the configurations that run on real kernels, timed together
    in one session (``common.timing``): fp32, int8 W8A8 everywhere, and int8 W8A8 with the first
    conv and the last linear kept fp32 (X86 quantizer per-module configuration)."""
    rows = []
    for kind, name, bits in configs:
        config = config_from_bits(bits)
        quantized = bake(apply_weight_quant(copy.deepcopy(model), config))
        rows.append({"config": name, "kind": kind, "layer_bits": bits_string(bits),
                     "total_bits": model_bits(model, config),
                     "size_bytes": quantized_file_bytes(model, config, ctx, "mixed_precision"),
                     **accuracy_columns(quantized, ctx),
                     "kernel": "none (simulated: fp32 conv on dequantized weights)", "simulated": "yes",
                     "latency_ms": ""})
        print(f"[mixed] {name:45s} {rows[-1]['layer_bits']:28s} {rows[-1]['total_bits'] / 8e6:.3f} MB "
              f"top-1 {rows[-1]['top1_acc']:.2f}%")
    return rows + real_kernel_rows(model, ctx, rounds)


def real_kernel_rows(model: nn.Module, ctx: RunContext, rounds: int) -> list[dict]:
    """fp32, int8 everywhere and int8 with first/last fp32, on real kernels (compiled with
    freezing; int8 rows count their int8 kernels and say simulated if none ran): validation and
    test top-1, real file bytes (for int8, the saved int8 program, scored as read back from it),
    batch-256 latency from one interleaved session (readings of another session -- a GPU run's
    CPU-only int8 -- move to other_session_latency_ms). The configurations are
    ``REAL_KERNEL_CONFIGS``, in that order; the int8 programs are made (calibrated) first."""
    calibration = calibration_batches(ctx)
    edges = edge_layers(model)
    layers = list(quantizable_layers(model))
    folder = quantized_dir(ctx)
    programs = {}   # the int8 programs first (each calibrated once), in REAL_KERNEL_CONFIGS order
    for c in REAL_KERNEL_CONFIGS:
        if c.int8:
            programs[c.config] = int8_program(model, calibration, folder / f"{c.file}.pt2",
                                              edges if c.first_last_fp32 else ())
    candidates = []
    for c in REAL_KERNEL_CONFIGS:
        bits = "-".join("32" if not c.int8 or (c.first_last_fp32 and name in edges) else "8" for name in layers)
        if c.int8:
            int8, size = programs[c.config]
            candidates.append((c.config, c.kind, bits, compile_int8(int8), size))
        else:
            candidates.append((c.config, c.kind, bits, InferenceCompiled(model), state_dict_bytes(model, ctx, c.file)))
    rows = []
    for name, kind, bits, runner, size in candidates:
        rows.append({"config": name, "kind": kind, "layer_bits": bits, "total_bits": "",
                     "size_bytes": size, **accuracy_columns(runner, ctx)})
    example = latency_batch(ctx)
    timed = time_interleaved({c[0]: Timed(c[3], example.to(module_device(c[3]))) for c in candidates},
                             new_session_id("mixed_precision"), rounds=rounds)
    for row in rows:
        row.update(timed[row["config"]])
        if row["config"] in programs and row["int8_kernels"] == 0:   # no int8 kernel ran: not a real int8 row
            row.update(simulated="yes", latency_ms="")
        else:
            row["simulated"] = "no"
    rows = one_session(rows)
    for row in rows:
        print(f"[mixed] {row['config']:45s} top-1 {row['top1_acc']:.2f}% {row['size_bytes']:,} B "
              f"latency {row['latency_ms']} ms ({row['kernel']})")
    torch._dynamo.reset()
    return rows
