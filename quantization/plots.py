"""Figures of the quantization study (each takes result rows and a PNG path)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common.figures import paper_layer_names, readable_log_axis, save_figure, zoom_and_full


QAT_MARKERS = "osD^vP<>"
QAT_OFFSET = 0.06        # epochs between the points of two formats at one epoch


def plot_qat_recovery(rows: list[dict], fp32_top1: float, within: float, path: Path) -> Path:
    """Validation top-1 (%) against QAT epoch, one line per format (epoch 0 = PTQ; the fp32
    fine-tune, the control, black and dashed); ``fp32_top1`` is the fp32 model's validation
    top-1, shaded down ``within`` points. Each format has its own colour and marker, its points
    offset sideways by ``QAT_OFFSET`` epoch from the next format's (all were measured at whole
    epochs, as the caption says) so that no line hides another; a point is filled where it was
    measured on real kernels and hollow where the model was simulated (a row's ``simulated``)."""
    from matplotlib.lines import Line2D

    formats = list(dict.fromkeys(r["format"] for r in rows))
    fig, ax = plt.subplots(figsize=(7.4, 4.0))
    ax.axhspan(fp32_top1 - within, fp32_top1, color="gray", alpha=0.15, zorder=0,
               label=f"within {within:g} pt of fp32 (validation {fp32_top1:.2f}%)")
    handles = []
    for i, fmt in enumerate(formats):
        offset = (i - (len(formats) - 1) / 2) * QAT_OFFSET
        chosen = sorted((int(r["epoch"]), float(r["val_top1_acc"]), r.get("simulated") == "yes")
                        for r in rows if r["format"] == fmt)
        control = fmt == "fp32"
        colour, marker = ("k" if control else f"C{i}"), QAT_MARKERS[i % len(QAT_MARKERS)]
        xs, ys = [e + offset for e, _, _ in chosen], [y for _, y, _ in chosen]
        ax.plot(xs, ys, color=colour, lw=1.3, ls="--" if control else "-", zorder=2)
        for x, y, simulated in zip(xs, ys, [s for _, _, s in chosen]):
            ax.plot(x, y, ls="none", marker=marker, ms=6, mew=1.3, color=colour,
                    mfc="white" if simulated else colour, zorder=3)
        every_simulated = all(simulated for _, _, simulated in chosen)
        handles.append(Line2D([], [], color=colour, ls="--" if control else "-", marker=marker, ms=6,
                              mfc="white" if every_simulated else colour,
                              label=f"{fmt} (fine-tune control)" if control else fmt))
    handles.append(ax.get_legend_handles_labels()[0][0])
    handles += [Line2D([], [], ls="none", marker="o", ms=6, color="0.35", label="filled: real kernels"),
                Line2D([], [], ls="none", marker="o", ms=6, color="0.35", mfc="white",
                       label="hollow: simulated (fake-quant)")]
    ax.set(xlabel="QAT epoch (0 = PTQ, before any fine-tuning)", ylabel="validation top-1 (%)",
           )
    ax.set_title("Recovery under QAT: VGG-11, validation top-1 after each epoch", fontsize=10)
    epochs = sorted({int(r["epoch"]) for r in rows})
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.text(0.01, 0.0, f"All points were measured at whole epochs; at each epoch the formats are drawn "
             f"{QAT_OFFSET:g} epoch apart\nso that none hides another.", fontsize=7.5, va="top")
    fig.tight_layout()
    return save_figure(fig, path)


BAND_BELOW_BEST = 6.0    # the zoomed panels show top-1 from the best minus this many points up to the best
K_MARKERS = dict(zip((2, 3, 4, 5, 6, 8, 16), "v^osDPX"))
MODEL_NAMES = {"vgg11": "VGG-11", "vgg16": "VGG-16", "vgg19": "VGG-19",
               "vgg11-channel-pruned": "VGG-11 70%-channel-pruned"}


def accuracy_band(accuracies: list[float], below: float = BAND_BELOW_BEST) -> tuple[float, float]:
    """The y-range of a zoomed panel: from ``below`` points under the best top-1 to a little above it."""
    best = max(accuracies)
    return best - below, best + 0.12 * below


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
        top, bottom = zoom_and_full(fig, gs[0, j], gs[1, j], band, full, first)
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
    top, bottom = zoom_and_full(fig, gs[0, 0], gs[1, 0], band, (max(0.0, min(accs) - 4), band[1]))
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


MIXED_KINDS = {"uniform": ("o", "-"), "first/last fp16": ("s", ":"), "adaptive (Hessian)": ("^", ":"),
               "adaptive (activation variance)": ("v", ":")}
REAL_KINDS = {"real int8": "D", "real int8, first/last fp32": "p"}


def bits_label(layer_bits: str) -> str:
    """A configuration's weight bits as a figure writes them, from mixed_precision.csv's
    ``layer_bits`` (one number per layer, conv1 to the last linear, joined by '-'): 'w4' when
    every layer has 4 bits; '16/4/16' when only the first and last differ from the rest;
    else every layer's bits, '16/8/6/.../16'."""
    bits = layer_bits.split("-")
    if len(set(bits)) == 1:
        return f"w{bits[0]}"
    if len(bits) > 2 and len(set(bits[1:-1])) == 1:
        return f"{bits[0]}/{bits[1]}/{bits[-1]}"
    return "/".join(bits)


def plot_mixed_precision(rows: list[dict], path: Path) -> Path:
    """Test top-1 (%) against model size (MB, log) for each kind of configuration, every point
    labelled with its weight bits (``bits_label``): simulated configurations (one line per kind)
    at their size in bits (codes + fp16 scales + fp16 rest); the real int8 models (PT2E) at the
    size of their file, hollow and under the lines, so that the uniform line's end shows through.
    The same zoom as ``plot_scaling_law``: a tall panel on the high-accuracy band above a short
    one with the whole range (the band shaded), each labelling the points it zooms on."""
    from common.figures import label_points

    def size_mb(r):
        return float(r["total_bits"]) / 8e6 if r["kind"] in MIXED_KINDS else float(r["size_bytes"]) / 1e6

    chosen = [r for r in rows if r["kind"] in MIXED_KINDS or r["kind"] in REAL_KINDS]
    accs = [float(r["top1_acc"]) for r in chosen]
    band = accuracy_band(accs)
    fig = plt.figure(figsize=(8.6, 6.4))
    gs = fig.add_gridspec(2, 1, height_ratios=(3, 1.6), hspace=0.06, left=0.09, right=0.66, top=0.93, bottom=0.2)
    top, bottom = zoom_and_full(fig, gs[0, 0], gs[1, 0], band, (max(0.0, min(accs) - 6), band[1]))
    colours = {}
    for i, (kind, (marker, ls)) in enumerate(MIXED_KINDS.items()):
        pts = sorted((size_mb(r), float(r["top1_acc"])) for r in chosen if r["kind"] == kind)
        colours[kind] = f"C{i}"
        if pts:
            for ax in (top, bottom):
                ax.plot(*zip(*pts), marker=marker, ms=5, ls=ls, lw=1.3, color=f"C{i}", label=kind, zorder=2)
    for kind, marker in REAL_KINDS.items():
        pts = [(size_mb(r), float(r["top1_acc"])) for r in chosen if r["kind"] == kind]
        colours[kind] = "k"
        if pts:
            for ax in (top, bottom):
                ax.scatter(*zip(*pts), marker=marker, s=90, facecolors="none", edgecolors="k", linewidths=1.1,
                           zorder=1.5, label=kind.replace("real int8", "real int8 W8A8 (PT2E)") + ", file size")
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.margins(x=0.1)
    readable_log_axis(bottom.xaxis)
    top.set_ylabel("test top-1 (%), high-accuracy band", fontsize=8)
    bottom.set_ylabel("whole range", fontsize=8)
    bottom.set_xlabel("model size (MB, log)")
    top.set_title("Mixed precision of VGG-11's weights: test top-1 vs size", fontsize=10)
    top.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7.5, frameon=False,
               title="configuration (label: weight bits)", title_fontsize=7.5)
    fig.text(0.01, 0.015, "Each point: VGG-11 with its weights at the bits written beside it: w4, every layer at "
             "4 bits; 16/4/16, the first conv and the last\nlinear at 16 bits, the rest at 4; otherwise each layer's "
             "bits, conv1 to the last linear. Lines (simulated, weight-only): size of\ncodes + fp16 scales + every other "
             "tensor at fp16. Hollow black: real int8 models, weights and activations (PT2E), size of their\nfile. "
             "Top: zoom on the high-accuracy band (shaded in the bottom panel, which shows the whole range).",
             fontsize=7.5, va="bottom")
    for ax, inside in ((top, True), (bottom, False)):
        ax.set_xlim(ax.get_xlim())
        ax.set_ylim(ax.get_ylim())
        shown = [r for r in chosen if (float(r["top1_acc"]) >= band[0]) == inside]
        label_points(ax, [size_mb(r) for r in shown], [float(r["top1_acc"]) for r in shown],
                     [bits_label(r["layer_bits"]) + (", real int8" if r["kind"] in REAL_KINDS else "")
                      for r in shown], fontsize=6.5,
                     avoid=[(size_mb(r), float(r["top1_acc"])) for r in chosen],
                     color=[colours[r["kind"]] for r in shown])
    return save_figure(fig, path)


def plot_distributions(weights: dict[str, torch.Tensor], activations: dict[str, torch.Tensor],
                       path: Path) -> Path:
    """Box plots per layer of |w| (top) and of the non-zero |input activation| values (bottom,
    sampled; post-ReLU inputs are mostly exact zeros, which a log axis cannot show), log scale;
    whiskers at the 0.1th/99.9th percentiles, crosses at the maximum."""
    names = list(weights)
    paper = paper_layer_names(names)       # conv1.., fc1.. as the paper names them
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
    axes[1].set_xticks(range(1, len(names) + 1), [paper[n] for n in names], rotation=45, ha="right", fontsize=7)
    axes[0].set_title("Weight and activation distributions per layer (whiskers: p0.1-p99.9)")
    return save_figure(fig, path)


def plot_clipping(layer: str, values: torch.Tensor, absmax: float, percentiles: dict[str, float],
                  quantized: dict[str, torch.Tensor], path: Path) -> Path:
    """Left: histogram of one layer's input with the clipping points; right: the histogram of the
    same values after int4 quantization without and with clipping. ``layer``: the layer's name as
    the paper gives it (conv5: ``common.figures.paper_layer_names``)."""
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
    for weights (left) and activations (right); layers named as in the paper (conv1.., fc1..)."""
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
        paper = paper_layer_names(layers)
        ax.set_xticks(x, [paper[name] for name in layers], rotation=45, ha="right", fontsize=7)
        ax.set(title=f"int4 {scope}, one layer at a time")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("test top-1 drop (points)")
    return save_figure(fig, path)
