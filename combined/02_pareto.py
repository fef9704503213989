"""Accuracy vs size and vs latency over every model the study produced, with Pareto fronts.

Reads the CSVs of the baselines, pruning, quantization, distillation and combined stages (run
them first); measures only what no CSV holds: each baseline architecture's fp32 file size and
batch-256 latency under torch.compile (a distilled student has VGG-11's), and the same latency
of the two cached pruned models (their CSV has eager readings). Points more than 15
points below the best top-1 stay in the CSV but off the figure.

Writes results/<dataset>-<profile>/combined/pareto_points.csv (family, model, top1_acc,
size_bytes, latency_ms, simulated, source, on_size_front, on_latency_front) and pareto.png/.pdf.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from combined.pareto import (baseline_architectures, collect_points, measure_models, plot_pareto,  # noqa: E402
                             with_fronts)
from combined.pipelines import TASK  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.data import num_classes  # noqa: E402
from common.results import write_results  # noqa: E402
from pruning.study import get_structured_final, get_unstructured_final  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per latency reading")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    results = ctx.results_dir(TASK).parent
    missing = [p for p in ("baselines/baselines.csv", "pruning/pruned_models.csv", "quantization/ptq.csv",
                           "quantization/mixed_precision.csv", "distillation/students.csv",
                           "combined/pipelines.csv") if not (results / p).exists()]
    if missing:
        sys.exit(f"missing results: {', '.join(missing)} under {results}; run ./run_all.sh "
                 f"(or the scripts that write them) for this profile and dataset first")
    models = {**baseline_architectures(num_classes(ctx.dataset), ctx.profile.width),
              "unstructured": get_unstructured_final(ctx)[0], "structured": get_structured_final(ctx)[0]}
    measured = measure_models(models, args.repeats)
    points = with_fronts(collect_points(results, measured))
    out = ctx.results_dir(TASK)
    write_results(points, out / "pareto_points.csv", ctx.provenance(measured=measured, latency_repeats=args.repeats))
    plot_pareto(points, out / "pareto.png", f"Every model of the study ({ctx.dataset}, {ctx.profile.name} profile)")


if __name__ == "__main__":
    main()
