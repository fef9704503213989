"""Channel-pruning sensitivity: each conv of VGG-11 loses a fraction of its output channels
(smallest L2 filter norm first; BatchNorm and the next layer's inputs follow), alone, over a
ratio grid; validation top-1 without fine-tuning.

Writes results/<dataset>-<profile>/pruning/structured_sensitivity.csv (layer, ratio,
channels_before, channels_after, params_fraction, top1_acc) and structured_sensitivity.png.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.baselines import get_baseline  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.results import write_results  # noqa: E402
from pruning.plots import plot_sensitivity  # noqa: E402
from pruning.study import CHANNEL_GRID, TASK, structured_sensitivity, val_top1  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--grid", type=float, nargs="+", default=list(CHANNEL_GRID),
                        help="channel ratios (fractions removed) to try per conv")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    grid = sorted(set(args.grid))
    base, base_meta = get_baseline(ctx, "vgg11")
    base_val = val_top1(base, ctx)
    rows = structured_sensitivity(base, ctx, grid)
    out = ctx.results_dir(TASK)
    write_results(rows, out / "structured_sensitivity.csv",
                  ctx.provenance(split="val", grid=grid, base_val_top1=base_val,
                                 base_trained_utc=base_meta.get("trained_utc"),
                                 importance="L2 norm of each output filter"))
    plot_sensitivity(rows, "ratio", base_val, out / "structured_sensitivity.png",
                     "fraction of the conv's output channels removed (others intact)",
                     "VGG-11 channel-pruning sensitivity")


if __name__ == "__main__":
    main()
