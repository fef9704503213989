"""Accuracy vs size and vs latency over every model the study produced, with Pareto fronts.

Reads the CSVs of the baselines, pruning, quantization, distillation and combined stages (run
them first) for accuracy and file size; multi-seed students enter as their seed mean with the
spread. Latency is measured here, in one interleaved session on this run's device, for the
latency class (architecture and kernels) of every point that runs on a real kernel, so the
latency panel compares only readings taken together. Points more than 15 points below the
best top-1 stay in the CSV but off the figure. The fronts are chosen on validation top-1;
``--fronts-only`` recomputes them (and the figure) from an existing pareto_points.csv.

Writes results/<dataset>-<profile>/combined/pareto_points.csv (family, model, top1_acc, top1_std,
seeds, val_top1_acc, size_bytes, simulated, latency_class, latency_ms, kernel, timing_session,
on_size_front, on_latency_front) and pareto.png/.pdf.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args, positive_int  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--rounds", type=positive_int, default=15,
                        help="timing rounds (every latency class once per round, in turns)")
    parser.add_argument("--fronts-only", action="store_true",
                        help="recompute the Pareto fronts and the figure from the existing pareto_points.csv "
                             "(no model is built or timed; its accuracies, sizes and latencies are kept)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from combined.pareto import (baseline_architectures, collect_points, fp32_file_bytes, latency_builders,
                                 time_latency_classes, with_fronts, with_latencies)
    from combined.pipelines import TASK
    from common.baselines import get_baseline
    from common.cli import RunContext
    from common.data import num_classes
    from common.measure import count_macs
    from common.models import architecture_id, count_parameters
    from common.results import write_results
    from pruning.study import get_structured_final

    ctx = RunContext.from_args(args)
    out = ctx.results_dir(TASK)
    if args.fronts_only:
        refresh_fronts(ctx, out / "pareto_points.csv")
        return
    results = out.parent
    missing = [p for p in ("baselines/baselines.csv", "pruning/pruned_models.csv", "quantization/ptq.csv",
                           "quantization/mixed_precision.csv", "distillation/students.csv",
                           "combined/pipelines.csv") if not (results / p).exists()]
    if missing:
        sys.exit(f"missing results: {', '.join(missing)} under {results}; run ./run_all.sh "
                 f"(or the scripts that write them) for this profile and dataset first")
    archs = baseline_architectures(num_classes(ctx.dataset), ctx.profile.width)
    base, structured = get_baseline(ctx, "vgg11")[0], get_structured_final(ctx)[0]
    ids = {**{name: architecture_id(m) for name, m in archs.items()}, "structured": architecture_id(structured)}
    costs = {name: (count_parameters(m), count_macs(m)) for name, m in {**archs, "structured": structured}.items()}
    points = collect_points(results, ids, fp32_file_bytes(archs), costs)
    needed = {p["latency_class"] for p in points if p["latency_class"]}
    builders = latency_builders(ctx, base, structured, {n: m for n, m in archs.items() if n != "vgg11"})
    latencies = time_latency_classes(builders, needed, args.rounds)
    for name, t in sorted(latencies.items(), key=lambda kv: kv[1]["latency_ms"]):
        print(f"[pareto] {name:45s} {t['latency_ms']:9.3f} ms  {t['kernel']}")
    points = with_fronts(with_latencies(points, latencies))
    write_results(points, out / "pareto_points.csv", ctx.provenance(latencies=latencies, latency_rounds=args.rounds))
    plot_figures(points, out, "Every model of the study")


def plot_figures(points: list[dict], folder: Path, title: str) -> None:
    """``pareto.png`` (top-1 vs file size and vs latency) and ``pareto_macs.png`` (vs MACs) in
    ``folder``, titled ``title`` (``common.figures.save_figure`` adds the dataset and profile)."""
    from combined.pareto import MACS, plot_pareto

    plot_pareto(points, folder / "pareto.png", title)
    plot_pareto(points, folder / "pareto_macs.png", title, panels=MACS)


def refresh_fronts(ctx, csv_path: Path) -> None:
    """Rewrite ``csv_path`` (pareto_points.csv) and its figure with the fronts recomputed by
    ``with_fronts`` from its own rows (``ctx``: the run's ``common.cli.RunContext``); the
    provenance names the file it was derived from."""
    from combined.pareto import points_from_row, with_fronts
    from common.results import read_rows, read_sidecar, write_results

    rows = read_rows(csv_path)
    if not rows:
        sys.exit(f"no {csv_path}; run combined/02_pareto.py without --fronts-only first")
    earlier = read_sidecar(csv_path)
    points = with_fronts([points_from_row(r) for r in rows])
    derived = {k: earlier.get(k) for k in ("git_commit", "dirty", "provenance_note", "finished_utc", "device",
                                           "wall_seconds", "command", "latency_rounds", "latencies") if k in earlier}
    write_results(points, csv_path, ctx.provenance(derived_from=derived, derivation="fronts recomputed"))
    plot_figures(points, csv_path.parent, "Every model of the study")


if __name__ == "__main__":
    main()
