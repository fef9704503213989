"""Test accuracy of VGG-11 against target overall sparsity (5 readings by default), before and
after fine-tuning, with per-layer ratios from the same equal-accuracy-drop rule as 02.

Writes results/<dataset>-<profile>/pruning/accuracy_vs_sparsity.csv (target_sparsity,
overall_sparsity, delta_points, top1_before_finetune, top1_acc, finetune_epochs) and
accuracy_vs_sparsity.png.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args, fraction, positive_int  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(description=__doc__))
    parser.add_argument("--targets", type=fraction, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9],
                        help="overall sparsities to prune to and fine-tune, each in [0, 1)")
    parser.add_argument("--finetune-epochs", type=positive_int, default=None,
                        help="default: the profile's finetune_epochs")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.baselines import get_baseline
    from common.cli import RunContext
    from common.curves import curve_rows, write_curves
    from common.results import write_results
    from pruning.plots import plot_accuracy_vs_sparsity
    from pruning.study import (TASK, UNSTRUCTURED, ratio_rule,
                               prune_unstructured_and_finetune, test_accuracy)

    ctx = RunContext.from_args(args)
    base, _ = get_baseline(ctx, "vgg11")
    rule, _ = ratio_rule(ctx, UNSTRUCTURED, base)
    rows, curves = [], []
    for target in sorted(args.targets):
        ratios, delta = rule(target)
        _, m = prune_unstructured_and_finetune(base, ctx, ratios, args.finetune_epochs,
                                               desc=f"sparsity {target:.2f}")
        rows.append({"target_sparsity": target, "overall_sparsity": round(m["overall_sparsity"], 4),
                     "delta_points": round(delta, 3), "top1_before_finetune": round(m["top1_before_finetune"], 2),
                     "top1_acc": round(m["top1_acc"], 2), "finetune_epochs": m["finetune_epochs"]})
        curves += curve_rows(f"sparsity {target:.2f}", m["history"], target_sparsity=target)
        print(rows[-1])
    out = ctx.results_dir(TASK)
    base_test = test_accuracy(base, ctx)["top1_acc"]
    write_results(rows, out / "accuracy_vs_sparsity.csv", ctx.provenance(original_top1=base_test))
    plot_accuracy_vs_sparsity(rows, base_test, out / "accuracy_vs_sparsity.png")
    write_curves(curves, out / "accuracy_vs_sparsity_curves.csv", ctx.provenance())


if __name__ == "__main__":
    main()
