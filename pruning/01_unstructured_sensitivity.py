"""Unstructured sensitivity: each conv/linear layer of VGG-11 magnitude-pruned alone over a
sparsity grid, validation top-1 after each (no fine-tuning).

Writes results/<dataset>-<profile>/pruning/unstructured_sensitivity.csv (layer, sparsity, params,
top1_acc) and unstructured_sensitivity.png (one curve per layer).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.baselines import get_baseline  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.results import write_results  # noqa: E402
from pruning.plots import plot_sensitivity  # noqa: E402
from pruning.study import SPARSITY_GRID, TASK, unstructured_sensitivity, val_top1  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--grid", type=float, nargs="+", default=list(SPARSITY_GRID),
                        help="sparsities (fractions) to try per layer")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    grid = sorted(set(args.grid))
    base, base_meta = get_baseline(ctx, "vgg11")
    base_val = val_top1(base, ctx)
    rows = unstructured_sensitivity(base, ctx, grid)
    out = ctx.results_dir(TASK)
    write_results(rows, out / "unstructured_sensitivity.csv",
                  ctx.provenance(split="val", grid=grid, base_val_top1=base_val,
                                 base_trained_utc=base_meta.get("trained_utc")))
    plot_sensitivity(rows, "sparsity", base_val, out / "unstructured_sensitivity.png",
                     "sparsity of the layer (others dense)", "VGG-11 unstructured sensitivity")
    worst = sorted(((r["top1_acc"], r["layer"]) for r in rows if r["sparsity"] == grid[-1]))
    print("most sensitive at the largest sparsity:", ", ".join(f"{l} ({a:.1f}%)" for a, l in worst[:3]))


if __name__ == "__main__":
    main()
