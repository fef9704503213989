"""Outliers: weight and activation distributions per layer, and clipping vs no clipping.

Statistics (outliers_stats.csv) of every conv/linear weight and of its input activation on 2048
training images; quantizers (outliers.csv): uniform to the absmax, uniform clipped at the
99.99th and at the 99.9th percentile of |x|, and power-of-two levels, on weights (per output
channel), activations (per tensor, calibrated on training images) or both, at int8 and int4,
all layers at once; and one layer at a time at int4 without vs with p99.9 clipping
(outliers_per_layer.csv). Top-1 on the test split; all simulated (fp32 arithmetic).

Writes results/<dataset>-<profile>/quantization/outliers_stats.csv, outliers.csv,
outliers_per_layer.csv, outliers_distributions.png, outliers_clipping.png and
outliers_per_layer.png.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.figures import paper_layer_names
    from common.results import write_results
    from quantization.fake_quant import quantizable_layers
    from quantization.outliers import (clipping_example, outlier_inputs, per_layer_rows,
                                       quantizer_rows, statistics_rows)
    from quantization.plots import plot_clipping, plot_distributions, plot_per_layer_clipping
    from quantization.study import TASK, base_model

    ctx = RunContext.from_args(args)
    base, meta = base_model(ctx)
    samples, absmax = outlier_inputs(base, ctx)
    stats = statistics_rows(base, samples, absmax)
    out = ctx.results_dir(TASK)
    write_results(stats, out / "outliers_stats.csv", ctx.provenance(base_checkpoint_utc=meta["trained_utc"]))
    weights = {n: m.weight.detach().cpu() for n, m in quantizable_layers(base).items()}
    plot_distributions(weights, samples, out / "outliers_distributions.png")
    layer, quantized = clipping_example(stats, samples)
    row = next(r for r in stats if r["layer"] == layer)
    plot_clipping(paper_layer_names(r["layer"] for r in stats)[layer], samples[layer], absmax[layer],
                  {"p99.99": row["act_p99_99"], "p99.9": row["act_p99_9"]}, quantized,
                  out / "outliers_clipping.png")
    write_results(quantizer_rows(base, ctx), out / "outliers.csv",
                  ctx.provenance(base_checkpoint_utc=meta["trained_utc"]))
    per_layer = per_layer_rows(base, ctx)
    write_results(per_layer, out / "outliers_per_layer.csv",  # wall time: the whole script
                  ctx.provenance(base_checkpoint_utc=meta["trained_utc"]))
    plot_per_layer_clipping(per_layer, out / "outliers_per_layer.png")


if __name__ == "__main__":
    main()
