"""Redraw the committed figures from the committed CSVs only: no model, no data, no training.

    python -m study.replot --profile cpu --dataset cifar10

Each figure is drawn by the very plotting function its stage calls, from the CSV (and JSON
sidecar) that stage wrote under ``results/<dataset>-<profile>/`` (``$RESULTS_DIR`` if set), so a
change to a plotting function shows at once. ``./run_all.sh`` still reruns the stages whose code
includes the changed module (``study.records`` tracks code); a redrawn figure by itself makes no
stage stale. Only PNG and PDF files are written; every CSV and JSON is left as it is. A figure whose
CSV is missing, or lacks the columns the figure needs (an older CSV), is skipped (and named).
Figures drawn from models or tensors (Grad-CAM grids, weight histograms, activation
distributions) cannot be redrawn from a CSV and are not listed here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from combined.pareto import MACS, plot_pareto, points_from_row
from common.data import DATASETS
from common.flags import Parser
from common.profiles import PROFILES
from common.results import read_rows, read_sidecar, results_root, run_folder
from pruning.plots import plot_accuracy_vs_sparsity, plot_sensitivity
from pruning.study import STRUCTURED, UNSTRUCTURED, PruningKind
from quantization.plots import (plot_bits_vs_k, plot_mixed_precision, plot_per_layer_clipping, plot_qat_recovery,
                                plot_scaling_law)
from quantization.study import BASE_MODEL

PARETO_TITLE = "Every model of the study"     # combined/02_pareto.py's title (the run is added by save_figure)


@dataclass(frozen=True)
class Figure:
    """One figure: its PNG and the CSV it is drawn from (both relative to the run folder), and
    how to draw it: (rows of the CSV, the CSV's path, the PNG's path, dataset, profile) -> the PNG,
    or None when the CSV lacks what the figure needs (e.g. a column an older run did not write)."""

    png: str
    csv: str
    draw: Callable[[list[dict], Path, Path, str, str], Path | None]


def _recorded(csv_path: Path, key: str):
    """``key`` of the CSV's provenance sidecar (a ValueError when it records none)."""
    value = read_sidecar(csv_path).get(key)
    if value is None:
        raise ValueError(f"{csv_path.with_suffix('.json')} records no {key}")
    return value


def _sensitivity(kind: PruningKind) -> Callable[[list[dict], Path, Path, str, str], Path]:
    def draw(rows, csv_path, png, dataset, profile):
        base_val = _recorded(csv_path, "base_val_top1")
        return plot_sensitivity(rows, kind.x_key, float(base_val), png, kind.xlabel, kind.title)
    return draw


def _qat_recovery(rows, csv_path, png, dataset, profile):
    """qat_recovery.png as quantization/02_qat.py draws it: the fp32 model's validation top-1 is
    qat_summary.csv's (else the fp32 row of epoch 0, the same model), the band the sidecar's."""
    summary = read_rows(csv_path.parent / "qat_summary.csv")
    fp32 = summary[0]["fp32_val_top1"] if summary else next(
        r["val_top1_acc"] for r in rows if r["format"] == "fp32" and int(r["epoch"]) == 0)
    return plot_qat_recovery(rows, float(fp32), float(_recorded(csv_path, "within_points")), png)


def _pareto_macs(rows, csv_path, png, dataset, profile):
    """pareto_macs.png, from a pareto_points.csv that has MACs per point (older ones have none)."""
    if "macs" not in rows[0]:
        return None
    return plot_pareto([points_from_row(r) for r in rows], png, PARETO_TITLE, panels=MACS)


FIGURES = (
    Figure("quantization/scaling_law.png", "quantization/scaling_law.csv",
           lambda rows, csv_path, png, dataset, profile: plot_scaling_law(rows, png)),
    Figure("quantization/scaling_law_vgg11.png", "quantization/scaling_law.csv",
           lambda rows, csv_path, png, dataset, profile: plot_bits_vs_k(rows, BASE_MODEL, png)),
    Figure("quantization/qat_recovery.png", "quantization/qat.csv", _qat_recovery),
    Figure("quantization/mixed_precision.png", "quantization/mixed_precision.csv",
           lambda rows, csv_path, png, dataset, profile: plot_mixed_precision(rows, png)),
    Figure("quantization/outliers_per_layer.png", "quantization/outliers_per_layer.csv",
           lambda rows, csv_path, png, dataset, profile: plot_per_layer_clipping(rows, png)),
    Figure("combined/pareto.png", "combined/pareto_points.csv",
           lambda rows, csv_path, png, dataset, profile: plot_pareto(
               [points_from_row(r) for r in rows], png, PARETO_TITLE)),
    Figure("combined/pareto_macs.png", "combined/pareto_points.csv", _pareto_macs),
    Figure("pruning/unstructured_sensitivity.png", "pruning/unstructured_sensitivity.csv", _sensitivity(UNSTRUCTURED)),
    Figure("pruning/structured_sensitivity.png", "pruning/structured_sensitivity.csv", _sensitivity(STRUCTURED)),
    Figure("pruning/accuracy_vs_sparsity.png", "pruning/accuracy_vs_sparsity.csv",
           lambda rows, csv_path, png, dataset, profile: plot_accuracy_vs_sparsity(
               rows, float(_recorded(csv_path, "original_top1")), png)),
)


def replot(dataset: str, profile: str, root: Path | None = None) -> tuple[list[Path], list[str]]:
    """Redraw every figure of ``FIGURES`` whose CSV exists under ``root/<dataset>-<profile>/``
    (default ``results_root()``). Returns (the PNGs written, what was skipped: the CSVs that
    were missing, and 'PNG: CSV lacks its columns' for a CSV a figure cannot be drawn from)."""
    run = (root or results_root()) / run_folder(dataset, profile)
    written, missing = [], []
    for figure in FIGURES:
        csv_path = run / figure.csv
        rows = read_rows(csv_path)
        if not rows:
            missing.append(figure.csv)
            continue
        png = figure.draw(rows, csv_path, run / figure.png, dataset, profile)
        if png is None:
            missing.append(f"{figure.png}: {figure.csv} lacks its columns")
        else:
            written.append(png)
    return written, missing


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), required=True)
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="the folder holding <dataset>-<profile>/ (default: $RESULTS_DIR or results/)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    written, missing = replot(args.dataset, args.profile, args.results_dir)
    for name in dict.fromkeys(missing):
        print(f"[replot] skipped: {name}" if " " in name else f"[replot] skipped: no {name}")
    if not written:
        run = (args.results_dir or results_root()) / run_folder(args.dataset, args.profile)
        sys.exit(f"[replot] nothing to redraw under {run}")


if __name__ == "__main__":
    main()
