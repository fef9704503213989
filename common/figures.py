"""Saving figures the way the report uses them: a PNG for people and a PDF for LaTeX, atomically,
each headed by the run it shows (dataset and profile, read from the folder it is saved in); and
the small helpers every figure shares: the paper's layer names, readable log axes, labels placed
beside their points without overlapping, the Grad-CAM grid."""

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

from common.flags import DATASET_NAMES  # noqa: E402
from common.profiles import PROFILES  # noqa: E402
from common.results import atomic_path, run_folder  # noqa: E402

_VGG_CONV = re.compile(r"^stages\.(\d+)\.(\d+)\.\d+$")      # common.models.VGG: stages.<s>.<block>.0
_VGG_LINEAR = re.compile(r"^classifier\.(\d+)$")              # classifier.<index>


DATASET_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}   # how a figure names a dataset


def run_of(path: str | os.PathLike) -> tuple[str, str] | None:
    """(dataset, profile) of a file saved as ``<run>/<task>/<file>``, where ``<run>`` is a
    results folder ``run_folder(dataset, profile)`` (e.g. ``cifar10-cpu``, or a variant's
    ``cifar10-cpu+lr=0.05``, whose profile is ``cpu+lr=0.05``); None when ``path`` is not in one."""
    folder = Path(path).parent.parent.name
    dataset, _, profile = folder.partition("-")
    if dataset not in DATASET_NAMES or profile.split("+")[0] not in PROFILES \
            or run_folder(dataset, profile) != folder:
        return None
    return dataset, profile


def run_label(path: str | os.PathLike) -> str | None:
    """The line that names a figure's run, from the folder it is saved in (``run_of``): e.g.
    'CIFAR-10, cpu profile', or 'CIFAR-10, cpu profile, variant lr=0.05'; None outside a run folder."""
    run = run_of(path)
    if run is None:
        return None
    dataset, profile = run
    study, _, variant = profile.partition("+")
    return f"{DATASET_TITLES.get(dataset, dataset)}, {study} profile" + (f", variant {variant}" if variant else "")


def _names_its_run(fig: "plt.Figure", dataset: str, profile: str) -> bool:
    """Whether a title or text of ``fig`` already names both the dataset (either spelling) and
    the profile ('<profile> profile'), as a title written '(cifar10, cpu profile)' does."""
    texts = [t.get_text() for t in fig.texts]            # the suptitle is one of them
    texts += [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center", "right")]
    spelled = re.compile(rf"(?:{re.escape(dataset)}|{re.escape(DATASET_TITLES.get(dataset, dataset))})(?!\d)",
                         re.IGNORECASE)
    return any(spelled.search(t) and f"{profile} profile" in t for t in texts)


def add_run_label(fig: "plt.Figure", label: str) -> None:
    """Write ``label`` centred in a line of its own above everything ``fig`` draws (its
    suptitle and axes titles included), so that it overlaps nothing; a tight save
    (``bbox_inches="tight"``) takes the line in."""
    fig.draw_without_rendering()          # the layout (tight or constrained) and every text in place
    box = fig.get_tightbbox(fig.canvas.get_renderer())        # inches
    width, height = fig.get_size_inches()
    fig.text((box.x0 + box.x1) / 2 / width, (box.y1 + 0.06) / height, label, ha="center", va="bottom",
             fontsize=9, color="0.25")


def save_figure(fig: "plt.Figure", png_path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write ``fig`` to ``png_path`` and the same stem as ``.pdf``; close it; return the PNG path.

    The one rule for every figure's run: saved inside a results folder
    ``<dataset>-<profile>[+variant]/<task>/``, it is headed by ``run_label`` (e.g. 'CIFAR-10, cpu
    profile') unless a title of it already names both; saved anywhere else, it is left as drawn."""
    png_path = Path(png_path)
    run, label = run_of(png_path), run_label(png_path)
    if run is not None and not _names_its_run(fig, *run):
        add_run_label(fig, label)
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
    than three of those; minor ticks unlabelled. An end of the range that those leave unlabelled
    over more than a fifth of its width (e.g. 10..14 of a 6..14 axis) gets one more label, at
    the limit rounded inwards to two significant digits ('14'), so the top and bottom decades
    read too. Call it once the data are drawn (it reads the axis limits)."""
    lo, hi = sorted(axis.get_view_interval())
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for subs in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10.0 ** e for e in decades for m in subs if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 3:
            break
    span = math.log10(hi / lo)

    def inward(limit, rounding):        # the limit at two significant digits, rounded towards the inside
        step = 10.0 ** (math.floor(math.log10(limit)) - 1)
        return float(f"{rounding(limit / step * (1 + 1e-12 if rounding is math.floor else 1 - 1e-12)) * step:.12g}")

    if ticks and span > 0:
        for limit, last, rounding in ((hi, max(ticks), math.floor), (lo, min(ticks), math.ceil)):
            extra = inward(limit, rounding)
            if abs(math.log10(limit / last)) > 0.2 * span and abs(math.log10(extra / last)) > 0.08 * span \
                    and lo <= extra <= hi:
                ticks.append(extra)
    axis.set_major_locator(FixedLocator(sorted(ticks)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt.format(v)))
    axis.set_minor_formatter(NullFormatter())


def zoom_and_full(fig, cell_top, cell_bottom, band, full, like=(None, None)):
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


# offsets (points) tried for a label, nearest first: beside, above/below, then further out
_DIRECTIONS = ((6, 4), (6, -6), (-6, 4), (-6, -6), (0, 8), (0, -10), (8, 0), (-8, 0),
               (3, 9), (-3, 9), (3, -11), (-3, -11), (8, 3), (-8, 3), (8, -4), (-8, -4))
_LABEL_OFFSETS = [(dx * r, dy * r) for r in (1, 1.8, 2.8, 4, 5.5, 7.5, 10, 13) for dx, dy in _DIRECTIONS]
_BESIDE = len(_DIRECTIONS)   # the first offsets: right beside the point (no leader line)


def label_points(ax: "plt.Axes", xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                 fontsize: float = 6.5, avoid: Sequence[tuple[float, float]] = (),
                 color: str | Sequence[str] = "k") -> list:
    """Write ``texts[i]`` (in ``color``, or ``color[i]``, on a faint white box) beside the point (xs[i], ys[i]) of
    ``ax``, each at the nearest offset where it overlaps no other label, no point (these and
    ``avoid``) and no drawn line, and stays inside the axes; the most crowded points are placed
    first. Points closer than a marker's size share one label (their texts on separate lines, top
    to bottom as the points lie, each in its point's colour); a thin leader line joins a label
    placed further out to its point. Call it once the figure's
    layout and the axes limits are final (positions are measured on the canvas). Returns the
    annotations."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    frame = ax.get_window_extent(renderer)
    pad = 4.0 * fig.dpi / 72          # a marker's half-size in pixels
    clear = 1.75 * pad                # how far a label keeps from a point or line
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

    leaders = [np.empty((0, 2))]      # the leader lines drawn so far, sampled like the lines

    def leader_of(box, at):           # a leader line from the point to the label's centre, sampled
        centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
        steps = max(2, int(np.hypot(*(centre - at)) / pad))
        return at + np.outer(np.linspace(0, 1, steps + 1)[1:-1], centre - at)

    def cost(box, at, leader):
        """Over a label is worst, then leaving the axes, then a leader across a label, then over
        points, then over lines and leaders."""
        grown = box.expanded(1.1, 1.2)
        overlaps = sum(grown.overlaps(other) for other in placed)
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        others = marks[np.hypot(*(marks - at).T) > 2 * pad]          # the points but its own
        crossed = passed = 0
        if leader:
            path = leader_of(box, at)
            crossed = sum(covered(other, path) > 0 for other in placed)
            if len(others):
                gaps = np.hypot(*(others[:, None, :] - path[None, :, :]).transpose(2, 0, 1)).min(axis=1)
                passed = int(np.sum(gaps < clear))
        return (1000 * overlaps + (0 if inside else 300) + 150 * crossed + 25 * covered(box, others) + 40 * passed
                + 2 * min(covered(box, lines), 12) + 2 * min(covered(box, np.concatenate(leaders)), 12))

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
        group = sorted(group, key=lambda g: -to_px(g[:2])[1])            # lines top to bottom, as the points lie
        text = "\n".join(g[2] for g in group)
        colours = list(dict.fromkeys(g[3] for g in group))
        best = None                       # (cost, offset index, box)
        for i, (dx, dy) in enumerate(_LABEL_OFFSETS):
            ann = annotate(text, x, y, dx, dy, False, colour)
            box = ann.get_window_extent(renderer)
            ann.remove()
            c = cost(box, to_px((x, y)), i >= _BESIDE) + i // _BESIDE     # nearer is better
            if best is None or c < best[0]:
                best = (c, i, box)
            if c == i // _BESIDE:          # nothing hit: no later offset can do better
                break
        _, i, box = best
        if i >= _BESIDE:
            leaders.append(leader_of(box, to_px((x, y))))
        # further out than right beside its point: a leader line shows which point it names
        if len(colours) == 1:
            out.append(annotate(text, x, y, *_LABEL_OFFSETS[i], i >= _BESIDE, colour))
        else:       # points of several colours: the box (and leader) once, then each line in its point's colour
            out.append(annotate(text, x, y, *_LABEL_OFFSETS[i], i >= _BESIDE, (0, 0, 0, 0)))
            anchor, to_pt = to_px((x, y)), 72.0 / fig.dpi
            ha = out[-1].get_horizontalalignment()
            left = {"left": box.x0, "right": box.x1}.get(ha, (box.x0 + box.x1) / 2)
            for j, (_, _, line, line_colour) in enumerate(group):
                middle = box.y1 - (j + 0.5) * box.height / len(group)
                ax.annotate(line, (x, y), xytext=((left - anchor[0]) * to_pt, (middle - anchor[1]) * to_pt),
                            textcoords="offset points", fontsize=fontsize, color=line_colour, ha=ha, va="center",
                            annotation_clip=False, zorder=2.6)
        placed.append(box)
    return out


CAM_COLORMAP = "jet"
CAM_ALPHA = 0.45          # the heat map over its image


def plot_cam_grid(images: torch.Tensor, cams: dict[str, np.ndarray], labels: list[str], path: Path,
                  rows_shown: int = 8, titles: dict[str, str] | None = None) -> Path:
    """Rows of images (``labels[i]`` beside row i: e.g. its class name and image id); columns:
    the image, then each model's Grad-CAM (normalised to 0..1) over it, titled by ``titles``
    (model -> column title, e.g. 'S_I' -> 'S_I (student trained alone)') or by the model's name;
    one colour bar for the heat."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    n = min(rows_shown, len(images))
    names = list(cams)
    titles = titles or {}
    fig, axes = plt.subplots(n, 1 + len(names), figsize=(1.6 * (1 + len(names)) + 0.8, 1.6 * n + 0.4),
                             squeeze=False, layout="constrained")
    for i in range(n):
        img = images[i].permute(1, 2, 0).cpu().numpy()
        axes[i, 0].imshow(img)
        axes[i, 0].set_ylabel(labels[i], fontsize=9)
        for j, name in enumerate(names, start=1):
            axes[i, j].imshow(img)
            axes[i, j].imshow(cams[name][i], cmap=CAM_COLORMAP, alpha=CAM_ALPHA, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(titles.get(name, name), fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=9)
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), CAM_COLORMAP), ax=axes, shrink=min(0.6, 3.0 / n),
                       aspect=25, pad=0.01, ticks=[0, 0.25, 0.5, 0.75, 1])
    bar.set_label(f"Grad-CAM (normalised), drawn at {CAM_ALPHA:g} opacity", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    return save_figure(fig, path)
