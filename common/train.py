"""Train (or load from cache) the baselines and write ``baselines/baselines.csv``.

    python -m common.train --model vgg11 vgg16 vgg19 --profile cpu --dataset cifar10

Rows of models not named in this call are kept from the existing CSV, so models can be
trained one at a time.
"""

from __future__ import annotations

import argparse

from common.architectures import VGG_STAGES
from common.flags import StageParser, add_common_args

BASELINE_MODELS = ("vgg11", "vgg16", "vgg19")


def baseline_row(meta: dict, macs: int) -> dict:
    """One baselines.csv row from a checkpoint's metadata (accuracies in %, seconds) and the
    model's multiply-accumulates per image (``common.measure.count_macs``)."""
    return {"model": meta["architecture"], "width": meta["width"], "seed": meta["seed"],
            "epochs": meta["epochs"], "top1_acc": round(meta["test_top1_acc"], 2),
            "top5_acc": round(meta["test_top5_acc"], 2),
            "val_top1_acc": round(meta["val_top1_acc"], 2), "params": meta["params"], "macs": macs,
            "train_seconds": round(meta["train_seconds"], 1),
            "seconds_per_epoch": round(meta["train_seconds"] / meta["epochs"], 1),
            "train_device": meta["device"]}


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--model", "--models", nargs="+", default=list(BASELINE_MODELS),
                        choices=sorted(VGG_STAGES), dest="models")
    parser.add_argument("--force", action="store_true", help="retrain even if a checkpoint exists")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from common.baselines import baseline_jobs, get_baseline   # here: --help imports no torch
    from common.cli import RunContext
    from common.curves import curve_rows, write_curves
    from common.jobs import run_jobs
    from common.measure import count_macs
    from common.results import read_rows, write_results

    ctx = RunContext.from_args(args)

    # trained concurrently with --jobs N, then read from the checkpoint cache
    run_jobs(ctx, baseline_jobs(args.models, ctx.seed, args.force), desc="baselines")
    trained = [get_baseline(ctx, name) for name in args.models]
    new_rows = [baseline_row(meta, count_macs(model)) for model, meta in trained]
    csv_path = ctx.results_dir("baselines") / "baselines.csv"
    fresh = {(r["model"], str(r["seed"])) for r in new_rows}
    kept = [{k: v for k, v in r.items() if k not in ("dataset", "profile")}
            for r in read_rows(csv_path) if (r["model"], r["seed"]) not in fresh]
    rows = sorted(kept + new_rows, key=lambda r: (r["model"], int(r["seed"])))
    write_results(rows, csv_path, ctx.provenance(models=[r["model"] for r in rows]))
    curves = [row for _, meta in trained for row in curve_rows(meta["name"], meta["history"])]
    write_curves(curves, ctx.results_dir("baselines") / "curves.csv", ctx.provenance(models=args.models),
                 f"Baselines: training curves ({ctx.dataset}, {ctx.profile.name} profile)")
    for r in new_rows:
        print(f"{r['model']}: top1={r['top1_acc']}% top5={r['top5_acc']}% "
              f"params={r['params']} train_seconds={r['train_seconds']}")


if __name__ == "__main__":
    main()
