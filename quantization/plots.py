"""Figures of the quantization study (each takes result rows and a PNG path)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common.figures import save_figure


def plot_qat_recovery(rows: list[dict], fp32_top1: float, within: float, path: Path) -> Path:
    """Validation top-1 (%) against QAT epoch, one line per format (epoch 0 = PTQ);
    ``fp32_top1`` is the fp32 model's validation top-1."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for fmt in dict.fromkeys(r["format"] for r in rows):
        pts = sorted((int(r["epoch"]), float(r["val_top1_acc"])) for r in rows if r["format"] == fmt)
        ax.plot(*zip(*pts), marker="o", ms=4, label=fmt)
    ax.axhspan(fp32_top1 - within, fp32_top1, color="gray", alpha=0.15,
               label=f"within {within:g} pt of fp32")
    ax.set(xlabel="QAT epoch (0 = PTQ)", ylabel="validation top-1 (%)", title="Recovery under QAT")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_scaling_law(rows: list[dict], path: Path) -> Path:
    """Dettmers-style panels (data type x block): PTQ test top-1 against total model bits, one
    line per k joining the models; the 16-bit line is float16."""
    ptq = [r for r in rows if r["method"] == "PTQ"]
    panels = list(dict.fromkeys((r["data_type"], r["block"]) for r in ptq if r["data_type"] != "float16"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (dtype, block) in zip(axes[0], panels):
        chosen = [r for r in ptq if (r["data_type"], r["block"]) == (dtype, block) or r["data_type"] == "float16"]
        for k in sorted({int(r["bits"]) for r in chosen}):
            pts = sorted((float(r["total_bits"]), float(r["top1_acc"])) for r in chosen if int(r["bits"]) == k)
            ax.plot(*zip(*pts), marker="o", ms=3, label=f"{k}-bit")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())   # only decades are labelled
        ax.set(title=f"{dtype}, {block}", xlabel="total model bits (log)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test top-1 (%)")
    axes[0][-1].legend(fontsize=7)
    return save_figure(fig, path)


def plot_bits_vs_k(rows: list[dict], model: str, path: Path) -> Path:
    """Test top-1 of ``model`` against k, PTQ and QAT, for each data type and block."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    chosen = [r for r in rows if r["model"] == model and r["data_type"] != "float16"]
    for key in dict.fromkeys((r["data_type"], r["block"], r["method"]) for r in chosen):
        pts = sorted((int(r["bits"]), float(r["top1_acc"])) for r in chosen
                     if (r["data_type"], r["block"], r["method"]) == key)
        ax.plot(*zip(*pts), marker="o", ms=3, ls="-" if key[2] == "PTQ" else "--", label=" ".join(key))
    ref = [float(r["top1_acc"]) for r in rows if r["model"] == model and r["data_type"] == "float16"]
    if ref:
        ax.axhline(ref[0], color="gray", ls=":", label="float16")
    ax.set(xlabel="bits per weight (k)", ylabel="test top-1 (%)", title=f"{model}: accuracy vs k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return save_figure(fig, path)


def plot_mixed_precision(rows: list[dict], path: Path) -> Path:
    """Test top-1 (%) against model size (MB of total bits) for each kind of configuration."""
    fig, ax = plt.subplots(figsize=(5.8, 3.9))
    markers = {"uniform": "o", "first/last fp16": "s", "adaptive (Hessian)": "^",
               "adaptive (activation variance)": "v"}
    for kind, marker in markers.items():
        pts = sorted((float(r["total_bits"]) / 8e6, float(r["top1_acc"])) for r in rows
                     if r["kind"] == kind)
        if pts:
            ax.plot(*zip(*pts), marker=marker, ms=5, ls="-" if kind == "uniform" else ":", label=kind)
    for kind, marker in (("real int8", "P"), ("real int8, first/last fp32", "X")):
        pts = [(float(r["size_bytes"]) / 1e6, float(r["top1_acc"])) for r in rows if r["kind"] == kind]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, s=50, color="k", label=f"{kind} (PT2E, file size)")
    ax.set(xlabel="model size (MB, codes + fp16 scales + fp16 rest)", ylabel="test top-1 (%)",
           title="Mixed precision: accuracy vs size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_distributions(weights: dict[str, torch.Tensor], activations: dict[str, torch.Tensor],
                       path: Path) -> Path:
    """Box plots per layer of |w| (top) and of the non-zero |input activation| values (bottom,
    sampled; post-ReLU inputs are mostly exact zeros, which a log axis cannot show), log scale;
    whiskers at the 0.1th/99.9th percentiles, crosses at the maximum."""
    names = list(weights)
    fig, axes = plt.subplots(2, 1, figsize=(8.0, 5.6), sharex=True)
    for ax, data, label in ((axes[0], weights, "|weight|"), (axes[1], activations, "|input activation| (non-zero)")):
        values = [data[n].abs().flatten() for n in names]
        values = [v[v > 0].numpy() for v in values]
        ax.boxplot(values, whis=(0.1, 99.9), showfliers=False)
        ax.plot(range(1, len(names) + 1), [v.max() for v in values], "rx", label="max")
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    axes[1].set_xticks(range(1, len(names) + 1), names, rotation=45, ha="right", fontsize=7)
    axes[0].set_title("Weight and activation distributions per layer (whiskers: p0.1-p99.9)")
    return save_figure(fig, path)


def plot_clipping(layer: str, values: torch.Tensor, absmax: float, percentiles: dict[str, float],
                  quantized: dict[str, torch.Tensor], path: Path) -> Path:
    """Left: histogram of one layer's input with the clipping points; right: the histogram of the
    same values after int4 quantization without and with clipping."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    v = values.numpy()
    left.hist(v, bins=200, log=True, color="gray")
    left.axvline(absmax, color="red", ls="-", label=f"max {absmax:.3g}")
    for (name, p), ls in zip(percentiles.items(), ("--", ":")):
        left.axvline(p, color="blue", ls=ls, label=f"{name} {p:.3g}")
    left.set(title=f"{layer} input (before quantization)", xlabel="value", ylabel="count")
    left.legend(fontsize=7)
    for name, q in quantized.items():
        levels, counts = torch.unique(q, return_counts=True)
        right.bar(levels.numpy(), counts.numpy(), width=absmax / 60, alpha=0.6, label=name)
    right.set_yscale("log")
    right.set(title="after int4 quantization", xlabel="quantized value")
    right.legend(fontsize=7)
    return save_figure(fig, path)


def plot_per_layer_clipping(rows: list[dict], path: Path) -> Path:
    """Grouped bars: test top-1 drop (points) with one layer at int4, without vs with clipping,
    for weights (left) and activations (right)."""
    scopes = list(dict.fromkeys(r["scope"] for r in rows))
    fig, axes = plt.subplots(1, len(scopes), figsize=(4.6 * len(scopes), 3.6), sharey=True, squeeze=False)
    for ax, scope in zip(axes[0], scopes):
        chosen = [r for r in rows if r["scope"] == scope]
        layers = list(dict.fromkeys(r["layer"] for r in chosen))
        quantizers = list(dict.fromkeys(r["quantizer"] for r in chosen))
        x = np.arange(len(layers))
        for i, q in enumerate(quantizers):
            drops = [next(float(r["drop_points"]) for r in chosen if r["layer"] == l and r["quantizer"] == q)
                     for l in layers]
            ax.bar(x + (i - 0.5) * 0.4, drops, width=0.4, label=q)
        ax.set_xticks(x, layers, rotation=45, ha="right", fontsize=7)
        ax.set(title=f"int4 {scope}, one layer at a time")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("test top-1 drop (points)")
    return save_figure(fig, path)
