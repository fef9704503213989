"""Training curves: the per-epoch history every training keeps (``common.training.fit``), as
results rows, figures, and optionally TensorBoard event files.

A stage that trains writes ``<task>/<name>_curves.csv`` with one row per model and epoch (the
histories come from the checkpoints' metadata for cached models, from ``fit`` for the others), so
a reader sees whether a baseline, a student or a QAT run had converged. ``plot_curves`` draws
training loss and validation top-1 against the epoch, one line per model; models that differ only
in their seed are one line, their mean, with a band from the lowest to the highest seed.

``--tensorboard`` (any script) sets ``$STUDY_TENSORBOARD_DIR``; every ``fit`` then also writes its
epochs as TensorBoard scalars under ``<dir>/<training>/`` (``tensorboard_writer``). TensorBoard is
an optional dependency, imported only then.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from common.errors import UserError

COLUMNS = ("epoch", "train_loss", "train_acc", "val_top1_acc", "lr", "seconds")
TENSORBOARD_DIR = "STUDY_TENSORBOARD_DIR"
_SEED = re.compile(r"^(?P<model>.+)_seed(?P<seed>\d+)$")


def curve_rows(name: str, history: Sequence[dict], **labels) -> list[dict]:
    """Rows (model, seed, ``labels``..., epoch, train_loss, train_acc (%), val_top1_acc (%), lr,
    seconds) of one training's per-epoch ``history``; ``name`` is the training's name, its
    ``_seed<N>`` suffix split off into ``seed`` ('' without one)."""
    found = _SEED.match(name)
    model, seed = (found["model"], int(found["seed"])) if found else (name, "")
    return [{"model": model, "seed": seed, **labels,
             **{k: round(float(h[k]), 5) if k != "epoch" else int(h[k]) for k in COLUMNS if k in h}}
            for h in history]


def _grouped(rows: Sequence[dict]) -> dict[str, dict[int, list[dict]]]:
    """model -> epoch -> the rows of every seed, in first-seen order."""
    groups: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        groups.setdefault(r["model"], {}).setdefault(int(r["epoch"]), []).append(r)
    return groups


def plot_curves(rows: Sequence[dict], path: str | os.PathLike, title: str, label=None) -> Path:
    """Training loss and validation top-1 (%) against the epoch, two panels, one line per model of
    ``rows`` (``curve_rows``): seeds of one model are their mean with a band spanning them
    (lowest to highest). ``label(model) -> str`` names a line (default: the model). Writes the PNG
    and a PDF; returns the PNG path."""
    from matplotlib.ticker import MaxNLocator

    from common.figures import plt, save_figure

    groups = _grouped(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (model, by_epoch) in enumerate(groups.items()):
        epochs = sorted(by_epoch)
        seeds = max(len(v) for v in by_epoch.values())
        name = (label(model) if label else model) + (f" (mean of {seeds} seeds)" if seeds > 1 else "")
        for ax, column in zip(axes, ("train_loss", "val_top1_acc")):
            values = [[float(r[column]) for r in by_epoch[e] if r.get(column) not in ("", None)] for e in epochs]
            shown = [(e, v) for e, v in zip(epochs, values) if v]
            if not shown:
                continue
            xs = [e for e, _ in shown]
            ax.plot(xs, [sum(v) / len(v) for _, v in shown], color=f"C{i % 10}", marker="o" if len(xs) < 12 else None,
                    ms=3, lw=1.4, label=name)
            if seeds > 1:
                ax.fill_between(xs, [min(v) for _, v in shown], [max(v) for _, v in shown], color=f"C{i % 10}",
                                alpha=0.18, lw=0)
    losses = [float(r["train_loss"]) for r in rows if r.get("train_loss") not in ("", None)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:   # objectives of different scales
        axes[0].set_yscale("log")
    axes[0].set_ylabel("training loss, mean over the epoch\n(each training's own objective)")
    axes[1].set_ylabel("validation top-1 (%)")
    last = max((int(r["epoch"]) for r in rows), default=1)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, last + 0.5)
        if last <= 20:
            ax.set_xticks(range(1, last + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.045 * ((len(labels) - 1) // 4), 1, 1))
    return save_figure(fig, path)


def write_curves(rows: Sequence[dict], csv_path: str | os.PathLike, provenance: dict, title: str | None = None,
                 label=None) -> None:
    """``rows`` (``curve_rows``) as ``csv_path`` with ``provenance`` (``common.results.write_results``)
    and, with a ``title``, their figure beside it (``plot_curves``: same stem, ``.png`` and ``.pdf``)."""
    from common.results import write_results

    write_results(list(rows), Path(csv_path), provenance)
    if title and rows:
        plot_curves(rows, Path(csv_path).with_suffix(".png"), title, label)


def tensorboard_writer(name: str):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing to ``$STUDY_TENSORBOARD_DIR/<name>/``,
    or None when that variable is unset. UserError (one line) when TensorBoard is not installed."""
    root = os.environ.get(TENSORBOARD_DIR)
    if not root:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    safe = "".join(c if c.isalnum() or c in "._-+=," else "_" for c in name)
    return SummaryWriter(log_dir=str(Path(root) / safe))


def log_epoch(writer, row: dict) -> None:
    """One epoch of ``fit``'s history (``row``) as TensorBoard scalars at step ``row['epoch']``."""
    if writer is None:
        return
    for key, value in row.items():
        if key != "epoch" and isinstance(value, (int, float)):
            writer.add_scalar(key, value, int(row["epoch"]))
    writer.flush()
