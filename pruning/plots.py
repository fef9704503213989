"""Figures of the pruning study (each takes result rows or models and a PNG path)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common.figures import paper_layer_names, save_figure, zoom_and_full


LAYER_MARKERS = "o^vDs<>phX*d"
SENSITIVITY_BAND = 6.0     # the zoomed panel: top-1 from the baseline down this many points


def plot_sensitivity(rows: list[dict], x_key: str, base_acc: float, path: Path, xlabel: str,
                     title: str) -> Path:
    """One curve per layer, named as in the paper (conv1..conv8, fc1, fc2: the rows' ``layer_name``,
    or ``paper_layer_names`` of their module names in rows written before that column existed),
    each with its own colour and marker (fc layers dashed): validation top-1 (%) against the
    layer's pruning ratio, from the unpruned baseline at 0; the baseline's top-1 as a dotted line
    with its own legend entry. A tall panel zooms on the band within ``SENSITIVITY_BAND`` points
    of the baseline, where the robust layers' curves lie close together, above a short one with
    the whole range (the band shaded). The legend sits beside the panels."""
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    names = paper_layer_names(layers)          # also the forward order of the layers
    names.update({r["layer"]: r["layer_name"] for r in rows if r.get("layer_name")})
    accs = [float(r["top1_acc"]) for r in rows] + [base_acc]
    band = (base_acc - SENSITIVITY_BAND, max(accs) + 0.1 * SENSITIVITY_BAND)
    fig = plt.figure(figsize=(7.6, 5.6))
    gs = fig.add_gridspec(2, 1, height_ratios=(2.4, 1.2), hspace=0.06, left=0.1, right=0.77, top=0.93, bottom=0.1)
    top, bottom = zoom_and_full(fig, gs[0, 0], gs[1, 0], band, (max(0.0, min(accs) - 4), band[1]))
    for i, layer in enumerate(sorted(layers, key=list(names).index)):
        pts = sorted((float(r[x_key]), float(r["top1_acc"])) for r in rows if r["layer"] == layer)
        fc = names[layer].startswith("fc")
        for ax in (top, bottom):
            ax.plot([0.0] + [p[0] for p in pts], [base_acc] + [p[1] for p in pts],
                    marker=LAYER_MARKERS[i % len(LAYER_MARKERS)], ms=4.5, mfc="none" if fc else f"C{i % 10}",
                    lw=1.2, ls="--" if fc else "-", color=f"C{i % 10}", label=names[layer])
    for ax in (top, bottom):
        ax.axhline(base_acc, color="k", lw=1, ls=":", label=f"unpruned baseline\n({base_acc:.2f}%)")
    top.set_title(title, fontsize=10)
    top.set_ylabel(f"validation top-1 (%), within {SENSITIVITY_BAND:g} pt", fontsize=8)
    bottom.set_ylabel("whole range", fontsize=8)
    bottom.set_xlabel(xlabel)
    top.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="layer",
               title_fontsize=8.5, handlelength=2.6)
    return save_figure(fig, path)


def plot_weight_histograms(layers: list[tuple[str, torch.Tensor, torch.Tensor]], path: Path,
                           before_label: str, after_label: str, title: str) -> Path:
    """Per layer (titled by the paper's name: conv1.., fc1..), overlaid histograms of weights
    before and after (zeros of 'after' left out)."""
    cols = 4
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows), squeeze=False)
    names = paper_layer_names([name for name, _, _ in layers])
    for ax, (name, before, after) in zip(axes.flat, layers):
        b = before.detach().flatten().float().cpu().numpy()
        a = after.detach().flatten().float().cpu().numpy()
        a = a[a != 0]
        edges = np.linspace(b.min(), b.max(), 81)
        ax.hist(b, bins=edges, alpha=0.5, label=before_label, color="tab:blue")
        ax.hist(a, bins=edges, alpha=0.6, label=after_label, color="tab:red")
        ax.set_yscale("log")
        ax.set_title(f"{names[name]} ({len(a)}/{len(b)} kept)", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_accuracy_vs_sparsity(rows: list[dict], base_acc: float, path: Path) -> Path:
    """Test top-1 (%) against overall sparsity, before and after fine-tuning, the original
    (unpruned) model's as a dotted line; the same zoom as ``plot_sensitivity``: a tall panel on
    the band within ``SENSITIVITY_BAND`` points of the original above a short one with the whole
    range (the band shaded)."""
    xs = [float(r["overall_sparsity"]) for r in rows]
    before, after = [float(r["top1_before_finetune"]) for r in rows], [float(r["top1_acc"]) for r in rows]
    accs = before + after + [base_acc]
    band = (base_acc - SENSITIVITY_BAND, max(accs) + 0.1 * SENSITIVITY_BAND)
    fig = plt.figure(figsize=(6.4, 4.8))
    gs = fig.add_gridspec(2, 1, height_ratios=(2.2, 1.2), hspace=0.06, left=0.12, right=0.97, top=0.92, bottom=0.12)
    top, bottom = zoom_and_full(fig, gs[0, 0], gs[1, 0], band, (max(0.0, min(accs) - 4), band[1]))
    for ax in (top, bottom):
        ax.plot(xs, before, "o--", color="C0", label="before fine-tune")
        ax.plot(xs, after, "s-", color="C1", label="after fine-tune")
        ax.axhline(base_acc, color="k", lw=1, ls=":", label=f"original, unpruned ({base_acc:.2f}%)", zorder=1)
    top.set_title("VGG-11 pruned (unstructured) to each overall sparsity", fontsize=10)
    top.set_ylabel(f"test top-1 (%), within {SENSITIVITY_BAND:g} pt", fontsize=8)
    bottom.set_ylabel("whole range", fontsize=8)
    bottom.set_xlabel("overall sparsity of conv+linear weights")
    top.legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)
