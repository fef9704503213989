"""Figures of the pruning study (each takes result rows or models and a PNG path)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from common.figures import paper_layer_names, save_figure


def plot_sensitivity(rows: list[dict], x_key: str, base_acc: float, path: Path, xlabel: str,
                     title: str) -> Path:
    """One curve per layer, named as in the paper (conv1..conv8, fc1, fc2: ``paper_layer_names``;
    fc layers dashed): validation top-1 (%) against the layer's pruning ratio, from the unpruned
    baseline at 0; the baseline's top-1 as a dotted line with its own legend entry. The legend
    sits beside the axes."""
    fig, ax = plt.subplots(figsize=(7.4, 4.4))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    names = paper_layer_names(layers)
    for i, layer in enumerate(sorted(layers, key=list(names).index)):
        pts = sorted((float(r[x_key]), float(r["top1_acc"])) for r in rows if r["layer"] == layer)
        fc = names[layer].startswith("fc")
        ax.plot([0.0] + [p[0] for p in pts], [base_acc] + [p[1] for p in pts], marker="s" if fc else "o", ms=3.5,
                lw=1.3, ls="--" if fc else "-", color=f"C{i % 10}", label=names[layer])
    ax.axhline(base_acc, color="k", lw=1, ls=":", label=f"unpruned baseline\n({base_acc:.2f}%)")
    ax.set(xlabel=xlabel, ylabel="validation top-1 (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="layer",
              title_fontsize=8.5, handlelength=2.6)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_weight_histograms(layers: list[tuple[str, torch.Tensor, torch.Tensor]], path: Path,
                           before_label: str, after_label: str, title: str) -> Path:
    """Per layer, overlaid histograms of weights before and after (zeros of 'after' left out)."""
    cols = 4
    rows = math.ceil(len(layers) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.2 * rows), squeeze=False)
    for ax, (name, before, after) in zip(axes.flat, layers):
        b = before.detach().flatten().float().cpu().numpy()
        a = after.detach().flatten().float().cpu().numpy()
        a = a[a != 0]
        edges = np.linspace(b.min(), b.max(), 81)
        ax.hist(b, bins=edges, alpha=0.5, label=before_label, color="tab:blue")
        ax.hist(a, bins=edges, alpha=0.6, label=after_label, color="tab:red")
        ax.set_yscale("log")
        ax.set_title(f"{name} ({len(a)}/{len(b)} kept)", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_accuracy_vs_sparsity(rows: list[dict], base_acc: float, path: Path) -> Path:
    """Test top-1 (%) against overall sparsity, before and after fine-tuning."""
    xs = [float(r["overall_sparsity"]) for r in rows]
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(xs, [float(r["top1_before_finetune"]) for r in rows], "o--", label="before fine-tune")
    ax.plot(xs, [float(r["top1_acc"]) for r in rows], "o-", label="after fine-tune")
    ax.axhline(base_acc, color="gray", ls=":", label="original")
    ax.set(xlabel="overall sparsity of conv+linear weights", ylabel="test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)

