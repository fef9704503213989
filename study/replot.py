"""Redraw the committed figures from the committed CSVs only: no model, no data, no training.

    python -m study.replot --profile cpu --dataset cifar10

Each figure is drawn by the very plotting function its stage calls, from the CSV (and JSON
sidecar) that stage wrote under ``results/<dataset>-<profile>/`` (``$RESULTS_DIR`` if set), so a
change to a plotting function shows at once. ``./run_all.sh`` still reruns the stages whose code
includes the changed module (``study.records`` tracks code); a redrawn figure by itself makes no
stage stale. Only PNG and PDF files are written; every CSV and JSON is left as it is. A figure whose
CSV is missing is skipped (and named).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from combined.pareto import plot_pareto, points_from_row
from common.data import DATASETS
from common.profiles import PROFILES
from common.results import read_rows, read_sidecar, results_root, run_folder
from pruning.plots import plot_sensitivity
from pruning.study import STRUCTURED, UNSTRUCTURED, PruningKind
from quantization.plots import plot_bits_vs_k, plot_scaling_law
from quantization.study import BASE_MODEL


@dataclass(frozen=True)
class Figure:
    """One figure: its PNG and the CSV it is drawn from (both relative to the run folder), and
    how to draw it: (rows of the CSV, the CSV's path, the PNG's path, dataset, profile)."""

    png: str
    csv: str
    draw: Callable[[list[dict], Path, Path, str, str], Path]


def _sensitivity(kind: PruningKind) -> Callable[[list[dict], Path, Path, str, str], Path]:
    def draw(rows, csv_path, png, dataset, profile):
        base_val = read_sidecar(csv_path).get("base_val_top1")
        if base_val is None:
            raise ValueError(f"{csv_path.with_suffix('.json')} records no base_val_top1")
        return plot_sensitivity(rows, kind.x_key, float(base_val), png, kind.xlabel, kind.title)
    return draw


FIGURES = (
    Figure("quantization/scaling_law.png", "quantization/scaling_law.csv",
           lambda rows, csv_path, png, dataset, profile: plot_scaling_law(rows, png)),
    Figure("quantization/scaling_law_vgg11.png", "quantization/scaling_law.csv",
           lambda rows, csv_path, png, dataset, profile: plot_bits_vs_k(rows, BASE_MODEL, png)),
    Figure("combined/pareto.png", "combined/pareto_points.csv",
           lambda rows, csv_path, png, dataset, profile: plot_pareto(
               [points_from_row(r) for r in rows], png, f"Every model of the study ({dataset}, {profile} profile)")),
    Figure("pruning/unstructured_sensitivity.png", "pruning/unstructured_sensitivity.csv", _sensitivity(UNSTRUCTURED)),
    Figure("pruning/structured_sensitivity.png", "pruning/structured_sensitivity.csv", _sensitivity(STRUCTURED)),
)


def replot(dataset: str, profile: str, root: Path | None = None) -> tuple[list[Path], list[str]]:
    """Redraw every figure of ``FIGURES`` whose CSV exists under ``root/<dataset>-<profile>/``
    (default ``results_root()``). Returns (the PNGs written, the CSVs that were missing)."""
    run = (root or results_root()) / run_folder(dataset, profile)
    written, missing = [], []
    for figure in FIGURES:
        csv_path = run / figure.csv
        rows = read_rows(csv_path)
        if not rows:
            missing.append(figure.csv)
            continue
        written.append(figure.draw(rows, csv_path, run / figure.png, dataset, profile))
    return written, missing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), required=True)
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="the folder holding <dataset>-<profile>/ (default: $RESULTS_DIR or results/)")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    written, missing = replot(args.dataset, args.profile, args.results_dir)
    for name in dict.fromkeys(missing):
        print(f"[replot] skipped: no {name}")
    if not written:
        run = (args.results_dir or results_root()) / run_folder(args.dataset, args.profile)
        sys.exit(f"[replot] nothing to redraw under {run}")


if __name__ == "__main__":
    main()
