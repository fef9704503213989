"""Channel pruning to a target parameter reduction (default 70%: the pruned model keeps ~30% of
the parameters, comparable with the 70%-sparse unstructured model), per-conv ratios chosen from
the structured sweep by the same equal-accuracy-drop rule as 02 (delta bisected on the real
parameter count of the pruned model), then fine-tuned.

Writes results/<dataset>-<profile>/pruning/structured_final.csv (layer, ratio, channels_before,
channels_after) and caches the smaller model in checkpoints/.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.baselines import get_baseline  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.results import write_results  # noqa: E402
from pruning.methods import prunable_layers  # noqa: E402
from pruning.study import TASK, get_structured_final  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--reduction", type=float, default=0.7,
                        help="fraction of parameters to remove (0.7 keeps ~30%%)")
    parser.add_argument("--force", action="store_true", help="redo even if the model is cached")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    base, _ = get_baseline(ctx, "vgg11")
    model, meta = get_structured_final(ctx, args.reduction, force=args.force)
    names = [n for n, m in prunable_layers(base) if hasattr(m, "out_channels")]
    rows = [{"layer": n, "ratio": round(meta["ratios"][n], 4), "channels_before": b.out_channels,
             "channels_after": s.out_channels} for n, b, s in zip(names, base.convs(), model.convs())]
    summary = {k: meta[k] for k in ("delta_points", "base_val_top1", "val_top1_before_finetune",
                                    "top1_before_finetune", "val_top1_acc", "top1_acc",
                                    "params_fraction", "finetune_epochs")}
    write_results(rows, ctx.results_dir(TASK) / "structured_final.csv",
                  ctx.provenance(target_reduction=args.reduction, rule="equal validation-accuracy drop",
                                 **summary))
    print(" ".join(f"{k}={v:.4g}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
