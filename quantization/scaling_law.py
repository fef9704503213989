"""Experiment 3: k-bit scaling in the spirit of Dettmers & Zettlemoyer (2023).

Weight-only quantization (activations stay fp32, as in the paper) of models of several sizes --
the study's VGG-11/16/19 baselines and, where it is cached or cheap, the 70%-channel-pruned VGG-11
-- for k in {2,3,4,5,6,8} and 16 (float16), two data types (integer and NF-k quantile) and two
block sizes (per output channel, and groups of 32 inputs). Accuracy is plotted against the total
model bits (codes, float16 block scales, everything else at 16 bits). The bit-optimal k is read
off the Pareto frontier of *validation* accuracy vs total bits over all models: the k that owns
the most frontier points (the paper's criterion); test top-1 is reported beside it. QAT (one
short fine-tune) is run on VGG-11 for the
low k where PTQ loses the most.
"""

from __future__ import annotations

import copy
import time
from collections import Counter

from common.cli import RunContext
from common.models import count_parameters
from common.training import trained_seconds
from quantization.fake_quant import apply_weight_quant, uniform_config
from quantization.quantizers import QuantSpec
from quantization.settings import K_BITS   # declared for the command line, without torch
from quantization.storage import model_bits
from quantization.study import accuracy_columns, qat_finetune, quantized_file_bytes

DATA_TYPES = ("int", "nf")
GROUP_SIZE = 32
BLOCKS = (None, GROUP_SIZE)


def block_name(group_size: int | None) -> str:
    return "per-channel" if group_size is None else f"g{group_size}"


def sweep_specs(bits: tuple[int, ...] = K_BITS) -> list[QuantSpec]:
    """Every (data type, block, k) of the sweep, then the 16-bit reference (float16)."""
    specs = [QuantSpec(k, g, dtype) for dtype in DATA_TYPES for g in BLOCKS for k in bits]
    return specs + [QuantSpec(16, dtype="float16")]


def spec_row(spec: QuantSpec) -> dict:
    return {"data_type": spec.dtype, "bits": spec.bits,
            "block": "-" if spec.is_float else block_name(spec.group_size)}


def ptq_sweep(models: dict, ctx: RunContext, bits: tuple[int, ...] = K_BITS) -> list[dict]:
    """PTQ rows for every model in ``models`` (name -> fp32 model) and spec of the sweep."""
    rows = []
    for name, model in models.items():
        params = count_parameters(model)
        for spec in sweep_specs(bits):
            config = uniform_config(model, spec)
            start = time.perf_counter()
            acc = accuracy_columns(apply_weight_quant(copy.deepcopy(model), config), ctx)
            rows.append({"model": name, "params": params, **spec_row(spec), "method": "PTQ",
                         "total_bits": model_bits(model, config),
                         "size_bytes": quantized_file_bytes(model, config, ctx, f"scaling_{name}"),
                         **acc, "simulated": "yes"})
            print(f"[scaling] {name} {spec.label:12s} PTQ top-1 {acc['top1_acc']:.2f}% "
                  f"({time.perf_counter() - start:.0f}s)")
    return rows


def qat_sweep(name: str, model, ctx: RunContext, bits: tuple[int, ...], epochs: int) -> list[dict]:
    """QAT rows for ``model`` at each data type, block and k in ``bits`` (``epochs`` each)."""
    rows = []
    params = count_parameters(model)
    for spec in sweep_specs(bits)[:-1]:
        config = uniform_config(model, spec)
        quantized = apply_weight_quant(copy.deepcopy(model), config)
        history = qat_finetune(quantized, ctx, epochs, desc=f"qat-{spec.label}", eval_split=None)
        acc = accuracy_columns(quantized, ctx)
        rows.append({"model": name, "params": params, **spec_row(spec), "method": f"QAT ({epochs} ep)",
                     "total_bits": model_bits(model, config), "size_bytes": "", **acc, "simulated": "yes",
                     "train_seconds": round(trained_seconds(history), 1)})
        print(f"[scaling] {name} {spec.label:12s} QAT top-1 {acc['top1_acc']:.2f}%")
    return rows


def pareto_frontier(points: list[dict], accuracy: str = "val_top1_acc") -> list[dict]:
    """Rows not dominated in (fewer total_bits, higher ``accuracy``), sorted by total_bits."""
    ordered = sorted(points, key=lambda r: (float(r["total_bits"]), -float(r[accuracy])))
    frontier, best = [], float("-inf")
    for r in ordered:
        if float(r[accuracy]) > best:
            frontier.append(r)
            best = float(r[accuracy])
    return frontier


def bit_optimal(rows: list[dict]) -> list[dict]:
    """Per (data type, block): the PTQ Pareto frontier of validation top-1 vs total bits over all
    models and k (16-bit included), and the k owning most of its points. One row per frontier
    point (with its test top-1 beside), with ``bit_optimal_k``."""
    out = []
    ptq = [r for r in rows if r["method"] == "PTQ"]
    for dtype in DATA_TYPES:
        for block in map(block_name, BLOCKS):
            points = [r for r in ptq if (r["data_type"], r["block"]) == (dtype, block)
                      or r["data_type"] == "float16"]
            frontier = pareto_frontier(points)
            counts = Counter(int(r["bits"]) for r in frontier)
            best_k = max(counts, key=lambda k: (counts[k], -k))
            out += [{"data_type": dtype, "block": block, "model": r["model"], "bits": r["bits"],
                     "total_bits": r["total_bits"], "val_top1_acc": r["val_top1_acc"],
                     "top1_acc": r["top1_acc"],
                     "bit_optimal_k": best_k, "frontier_points_of_k": counts[best_k],
                     "frontier_points": len(frontier)} for r in frontier]
    return out
