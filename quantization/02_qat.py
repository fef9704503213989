"""Quantization-aware training from the trained VGG-11 at fp16, bf16, int8 and int4.

Each format starts from its PTQ model (epoch 0) and fine-tunes for the profile's finetune
epochs with the pruning study's recipe (cosine, a tenth of the peak learning rate); validation
top-1 after every epoch (observers frozen while evaluating, so no evaluation image moves a
range), test top-1 of the PTQ model and of the final model only. int8 is torchao's PT2E QAT
(prepare_qat_pt2e, BatchNorm folded, fp32 training) and its last epoch is the converted int8
model, run on int8 kernels; fp16, bf16 and int4 (W4A4) are this study's fake-quantizers
(simulated), fp16 trained without bf16 autocast. An fp32 fine-tune with the same recipe is the
control: fine-tuning alone can move accuracy. Reports the first epoch whose validation top-1 is
within 0.5 point of the fp32 model's.

Writes results/<dataset>-<profile>/quantization/qat.csv, qat_summary.csv and qat_recovery.png.
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
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="QAT epochs per format (default: the profile's finetune_epochs)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.curves import write_curves
    from common.results import write_results
    from quantization.formats import WITHIN_POINTS, qat_curves, qat_summary
    from quantization.plots import plot_qat_recovery
    from quantization.study import TASK, base_model

    ctx = RunContext.from_args(args)
    base, meta = base_model(ctx)
    epochs = args.epochs or ctx.profile.finetune_epochs
    rows, curves = qat_curves(base, ctx, epochs)
    summary = qat_summary(rows)
    fp32 = summary[0]["fp32_val_top1"]
    out = ctx.results_dir(TASK)
    prov = ctx.provenance(base_checkpoint_utc=meta["trained_utc"], qat_epochs=epochs,
                          within_points=WITHIN_POINTS)
    write_results(rows, out / "qat.csv", prov)
    write_results(summary, out / "qat_summary.csv", prov)
    plot_qat_recovery(rows, fp32, WITHIN_POINTS, out / "qat_recovery.png")
    write_curves(curves, out / "qat_training_curves.csv", prov,
                 f"QAT fine-tunes of VGG-11: training curves ({ctx.dataset}, {ctx.profile.name} profile)",
                 label=lambda model: model.removeprefix("qat-"))
    for s in summary:
        epoch = s["epochs_to_within_half_point"]
        print(f"[qat] {s['format']:5s} PTQ {s['ptq_top1']:.2f} -> QAT {s['qat_top1']:.2f} "
              f"(within {WITHIN_POINTS} pt of fp32: {'never' if epoch == '' else f'from epoch {epoch}'})")


if __name__ == "__main__":
    main()
