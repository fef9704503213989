"""Saving figures the way the report uses them: a PNG for people and a PDF for LaTeX, atomically;
and the small helpers every figure shares: the paper's layer names, readable log axes, labels
placed beside their points without overlapping."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

import matplotlib

matplotlib.use("Agg")  # no display on the study's machines
import matplotlib.pyplot as plt  # noqa: E402

from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402
from torch import nn  # noqa: E402

from common.results import atomic_path  # noqa: E402

_VGG_CONV = re.compile(r"^stages\.(\d+)\.(\d+)\.\d+$")      # common.models.VGG: stages.<s>.<block>.0
_VGG_LINEAR = re.compile(r"^classifier\.(\d+)$")              # classifier.<index>


def save_figure(fig: "plt.Figure", png_path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write ``fig`` to ``png_path`` and the same stem as ``.pdf``; close it; return the PNG path."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:])
    plt.close(fig)
    print(f"[figure] wrote {png_path} (+ .pdf)")
    return png_path


def paper_layer_names(layers: Iterable[str] | Iterable[tuple[str, nn.Module]]) -> dict[str, str]:
    """Module name -> the paper's name of the layer: conv1..convN for the convolutions, fc1..fcM
    for the linear layers, each counted in forward order (VGG-11: conv1..conv8, fc1, fc2).

    ``layers``: (name, module) pairs in forward order (``pruning.methods.prunable_layers``), the
    kind read from the module; or bare module names of a ``common.models.VGG`` as the results
    CSVs hold them ('stages.<s>.<b>.0' a conv, 'classifier.<i>' a linear layer), put in forward
    order by those indices whatever order they come in. A name of neither form keeps its own name.
    """
    layers = list(layers)
    if all(isinstance(item, tuple) for item in layers):
        kinds = [(name, "conv" if isinstance(m, nn.Conv2d) else "fc" if isinstance(m, nn.Linear) else None)
                 for name, m in layers]
    else:
        def order(name):
            conv, linear = _VGG_CONV.match(name), _VGG_LINEAR.match(name)
            return (0, int(conv[1]), int(conv[2])) if conv else (1, int(linear[1]), 0) if linear else (2, 0, 0)
        kinds = [(name, ("conv", "fc", None)[order(name)[0]]) for name in sorted(set(layers), key=order)]
    counts, names = {"conv": 0, "fc": 0}, {}
    for name, kind in kinds:
        if kind is None:
            names[name] = name
        else:
            counts[kind] += 1
            names[name] = f"{kind}{counts[kind]}"
    return names


def readable_log_axis(axis, fmt: str = "{:g}") -> None:
    """Label a log-scaled ``axis`` (``ax.xaxis``/``ax.yaxis``) at 1, 2 and 5 x 10^n as plain
    numbers ('0.5', '1', '2', '5', '10', ...), or at every 1..9 x 10^n where the range holds fewer
    than three of those; minor ticks unlabelled. Call it once the data are drawn (it reads the
    axis limits)."""
    lo, hi = sorted(axis.get_view_interval())
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for subs in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10.0 ** e for e in decades for m in subs if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            break
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt.format(v)))
    axis.set_minor_formatter(NullFormatter())


def spread_sideways(xs: Sequence[float], width: float = 0.035, log: bool = True) -> list[float]:
    """Positions for points that share one x value, spread evenly over +-``width`` around it (in
    decades on a log axis, else as a fraction of x), in the order given: one group of markers
    that would hide each other (and their error bars) becomes a readable row."""
    n = len(xs)
    steps = [0.0] if n == 1 else [width * (2 * i / (n - 1) - 1) for i in range(n)]
    return [x * 10.0 ** s if log else x * (1 + s) for x, s in zip(xs, steps)]


# offsets (points) tried for a label, nearest first: beside, above/below, then further out
_LABEL_OFFSETS = [(dx * r, dy * r) for r in (1, 1.8, 2.8, 4, 5.5, 7.5)
                  for dx, dy in ((6, 4), (6, -6), (-6, 4), (-6, -6), (0, 8), (0, -10), (8, 0), (-8, 0))]
_BESIDE = 8           # the first offsets: right beside the point (no leader line)


def label_points(ax: "plt.Axes", xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                 fontsize: float = 6.5, avoid: Sequence[tuple[float, float]] = (),
                 color: str | Sequence[str] = "k") -> list:
    """Write ``texts[i]`` (in ``color``, or ``color[i]``, on a faint white box) beside the point (xs[i], ys[i]) of
    ``ax``, each at the nearest offset where it overlaps no other label, no point (these and
    ``avoid``) and no drawn line, and stays inside the axes; the most crowded points are placed
    first. Points closer than a marker's size share one label (their texts on separate lines); a
    thin leader line joins a label placed further out to its point. Call it once the figure's
    layout and the axes limits are final (positions are measured on the canvas). Returns the
    annotations."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    frame = ax.get_window_extent(renderer)
    pad = 4.0 * fig.dpi / 72          # a marker's half-size in pixels
    clear = 1.5 * pad                 # how far a label keeps from a point or line
    marks = np.array([to_px((x, y)) for x, y in [*zip(xs, ys), *avoid]]).reshape(-1, 2)
    lines = [np.empty((0, 2))]        # the drawn lines, sampled every marker's size along them
    for line in ax.get_lines():
        path = line.get_transform().transform(np.column_stack(line.get_data()).astype(float))
        for a, b in zip(path[:-1], path[1:]):
            steps = max(1, int(np.hypot(*(b - a)) / pad))
            lines.append(a + np.outer(np.linspace(0, 1, steps + 1), b - a))
    lines = np.concatenate(lines)
    placed, out = [], []

    def covered(box, at):
        return int(np.sum((box.x0 - clear < at[:, 0]) & (at[:, 0] < box.x1 + clear)
                          & (box.y0 - clear < at[:, 1]) & (at[:, 1] < box.y1 + clear)))

    def cost(box):          # over a label is worst, then leaving the axes, then over points, then lines
        grown = box.expanded(1.1, 1.2)
        overlaps = sum(grown.overlaps(other) for other in placed)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        return 1000 * overlaps + (0 if inside else 300) + 8 * covered(box, marks) + min(covered(box, lines), 8)

    colors = [color] * len(texts) if isinstance(color, str) else list(color)

    def annotate(text, x, y, dx, dy, leader, colour):
        return ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, color=colour,
                           ha="left" if dx > 0 else "right" if dx < 0 else "center",
                           va="bottom" if dy > 0 else "top" if dy < 0 else "center", annotation_clip=False,
                           bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.75), zorder=2.5,
                           arrowprops=dict(arrowstyle="-", lw=0.5, color="0.45", shrinkA=0, shrinkB=3)
                           if leader else None)

    groups = []                       # points closer than a marker's size share one label
    for x, y, text, colour in zip(xs, ys, texts, colors):
        px = to_px((x, y))
        near = next((g for g in groups if np.hypot(*(to_px(g[0][:2]) - px)) < 2 * pad), None)
        if near is None:
            groups.append([(x, y, text, colour)])
        elif text not in [g[2] for g in near]:
            near.append((x, y, text, colour))
    centres = [to_px(g[0][:2]) for g in groups]
    crowd = [sum(np.hypot(*(c - o)) < 80 * fig.dpi / 72 for o in centres) for c in centres]
    for _, group in sorted(zip(crowd, groups), key=lambda cg: -cg[0]):    # the most crowded first
        x, y, _, colour = group[0]
        text = "\n".join(g[2] for g in group)
        best = None                       # (cost, offset index, box)
        for i, (dx, dy) in enumerate(_LABEL_OFFSETS):
            ann = annotate(text, x, y, dx, dy, False, colour)
            box = ann.get_window_extent(renderer)
            ann.remove()
            c = cost(box) + i // _BESIDE      # nearer is better: a label over a line beats a long leader
            if best is None or c < best[0]:
                best = (c, i, box)
            if c == i // _BESIDE:          # nothing hit: no later offset can do better
                break
        _, i, box = best
        # further out than right beside its point: a leader line shows which point it names
        out.append(annotate(text, x, y, *_LABEL_OFFSETS[i], i >= _BESIDE, colour))
        placed.append(box)
    return out


def plot_cam_grid(images: torch.Tensor, cams: dict[str, np.ndarray], labels: list[str], path: Path,
                  rows_shown: int = 8) -> Path:
    """Rows of images; columns: the image, then each model's Grad-CAM over it."""
    n = min(rows_shown, len(images))
    names = list(cams)
    fig, axes = plt.subplots(n, 1 + len(names), figsize=(1.6 * (1 + len(names)), 1.6 * n), squeeze=False)
    for i in range(n):
        img = images[i].permute(1, 2, 0).cpu().numpy()
        axes[i, 0].imshow(img)
        axes[i, 0].set_ylabel(labels[i], fontsize=9)
        for j, name in enumerate(names, start=1):
            axes[i, j].imshow(img)
            axes[i, j].imshow(cams[name][i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=10)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
