"""Figures of the quantization study (each takes result rows and a PNG path)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common.figures import readable_log_axis, save_figure


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


BAND_BELOW_BEST = 6.0    # the zoomed panels show top-1 from the best minus this many points up to the best
K_MARKERS = dict(zip((2, 3, 4, 5, 6, 8, 16), "v^osDPX"))
MODEL_NAMES = {"vgg11": "VGG-11", "vgg16": "VGG-16", "vgg19": "VGG-19",
               "vgg11-channel-pruned": "VGG-11 70%-channel-pruned"}


def accuracy_band(accuracies: list[float], below: float = BAND_BELOW_BEST) -> tuple[float, float]:
    """The y-range of a zoomed panel: from ``below`` points under the best top-1 to a little above it."""
    best = max(accuracies)
    return best - below, best + 0.12 * below


def _zoom_and_full(fig, cell_top, cell_bottom, band, full, like=(None, None)):
    """A tall axes zoomed on ``band`` above a short one with the whole ``full`` range (the band
    shaded in it); all share x, and y with ``like``'s (top, bottom) pair where given."""
    top = fig.add_subplot(cell_top, sharex=like[0], sharey=like[0])
    bottom = fig.add_subplot(cell_bottom, sharex=top, sharey=like[1])
    top.set_ylim(*band)
    bottom.set_ylim(*full)
    bottom.axhspan(*band, color="0.85", zorder=0)
    top.tick_params(labelbottom=False)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return top, bottom


def plot_scaling_law(rows: list[dict], path: Path) -> Path:
    """Dettmers-style panels (data type x block): PTQ test top-1 against total model bits, one
    line per k joining the models (one point per trained model: the pruned VGG-11, VGG-11,
    VGG-16, VGG-19, left to right); the 16-bit line is float16, the same in every panel.

    The high-accuracy band is shown as a second, zoomed panel: each column is a tall panel on
    the band (``accuracy_band``: the best top-1 down ``BAND_BELOW_BEST`` points), where the 4- to
    16-bit lines are told apart, above a short panel with the whole range (the band shaded) for
    the 2- and 3-bit points below it. Log x axis in Mbit, labelled at 1-2-5 steps; one legend
    for all panels and a caption line saying what a point is."""
    ptq = [r for r in rows if r["method"] == "PTQ"]
    panels = list(dict.fromkeys((r["data_type"], r["block"]) for r in ptq if r["data_type"] != "float16"))
    accs = [float(r["top1_acc"]) for r in ptq]
    band = accuracy_band(accs)
    full = (max(0.0, min(accs) - 4), band[1])
    fig = plt.figure(figsize=(2.9 * len(panels) + 1.4, 5.0))
    gs = fig.add_gridspec(2, len(panels), height_ratios=(3, 1.25), hspace=0.06, wspace=0.08,
                          left=0.06, right=0.99 - 1.3 / fig.get_figwidth(), top=0.88, bottom=0.2)
    first = (None, None)
    for j, (dtype, block) in enumerate(panels):
        top, bottom = _zoom_and_full(fig, gs[0, j], gs[1, j], band, full, first)
        first = (top, bottom) if j == 0 else first
        chosen = [r for r in ptq if (r["data_type"], r["block"]) == (dtype, block) or r["data_type"] == "float16"]
        for i, k in enumerate(sorted({int(r["bits"]) for r in chosen})):
            pts = sorted((float(r["total_bits"]) / 1e6, float(r["top1_acc"])) for r in chosen if int(r["bits"]) == k)
            for ax in (top, bottom):
                ax.plot(*zip(*pts), marker=K_MARKERS.get(k, "o"), ms=4, lw=1.2, color=f"C{i}",
                        label=f"{k}-bit" + (" (float16)" if k == 16 else ""))
        top.set_title(f"{dtype}, {'per-channel scales' if block == 'per-channel' else block.replace('g', 'groups of ')}",
                      fontsize=9)
        top.set_xscale("log")
        bottom.set_xlabel("total model bits (Mbit, log)", fontsize=8)
        if j:
            top.tick_params(labelleft=False)
            bottom.tick_params(labelleft=False)
        else:
            top.set_ylabel("test top-1 (%), high-accuracy band", fontsize=8)
            bottom.set_ylabel("whole range", fontsize=8)
    readable_log_axis(first[0].xaxis)
    handles, labels = first[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="weights at", title_fontsize=8,
               frameon=False)
    models = [MODEL_NAMES.get(m, m) for m, _ in sorted({(r["model"], int(r["params"])) for r in ptq},
                                                        key=lambda mp: mp[1])]
    fig.suptitle("k-bit scaling law: test top-1 after post-training quantization vs total model bits",
                 fontsize=10)
    fig.text(0.01, 0.015, "Each point: one trained model with all its weights quantized to k bits (PTQ, "
             "simulated); on each line, left to right: " + ", ".join(models) + ".\nx: k-bit codes + "
             "fp16 scales + every other tensor at 16 bits; y: test top-1. Top row: zoom on the "
             "high-accuracy band (shaded in the bottom row, which shows the whole range).",
             fontsize=7.5, va="bottom")
    return save_figure(fig, path)


def plot_bits_vs_k(rows: list[dict], model: str, path: Path) -> Path:
    """Test top-1 of ``model`` against k, PTQ (solid) and QAT (dashed), one colour per data type
    and block; the same zoom as ``plot_scaling_law``: a tall panel on the high-accuracy band
    above a short one with the whole range (the band shaded)."""
    chosen = [r for r in rows if r["model"] == model and r["data_type"] != "float16"]
    ref = [float(r["top1_acc"]) for r in rows if r["model"] == model and r["data_type"] == "float16"]
    accs = [float(r["top1_acc"]) for r in chosen] + ref
    band = accuracy_band(accs)
    fig = plt.figure(figsize=(7.4, 4.8))
    gs = fig.add_gridspec(2, 1, height_ratios=(3, 1.25), hspace=0.06, left=0.1, right=0.68, top=0.9, bottom=0.2)
    top, bottom = _zoom_and_full(fig, gs[0, 0], gs[1, 0], band, (max(0.0, min(accs) - 4), band[1]))
    kinds = list(dict.fromkeys((r["data_type"], r["block"]) for r in chosen))
    for key in dict.fromkeys((r["data_type"], r["block"], r["method"]) for r in chosen):
        pts = sorted((int(r["bits"]), float(r["top1_acc"])) for r in chosen
                     if (r["data_type"], r["block"], r["method"]) == key)
        qat = key[2] != "PTQ"
        for ax in (top, bottom):
            ax.plot(*zip(*pts), marker="s" if qat else "o", ms=4, ls="--" if qat else "-",
                    color=f"C{kinds.index(key[:2])}", label=" ".join(key))
    for ax in (top, bottom):
        if ref:
            ax.axhline(ref[0], color="k", ls=":", lw=1, label=f"float16 ({ref[0]:.2f}%)")
        ax.set_xticks(sorted({int(r["bits"]) for r in chosen}))
    top.set_ylabel("test top-1 (%), zoomed", fontsize=8)
    bottom.set(xlabel="bits per weight (k)")
    bottom.set_ylabel("whole range", fontsize=8)
    top.set_title(f"{MODEL_NAMES.get(model, model)}: test top-1 vs bits per weight", fontsize=10)
    top.legend(*top.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7.5,
               frameon=False, title="data type, block, method", title_fontsize=7.5)
    fig.text(0.01, 0.015, f"Each point: {MODEL_NAMES.get(model, model)} with all its weights at k bits; PTQ "
             "(solid): rounded after training; QAT (dashed): fine-tuned with the quantizer.\nTop: zoom on "
             "the high-accuracy band (shaded in the bottom panel, which shows the whole range).",
             fontsize=7.5, va="bottom")
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
