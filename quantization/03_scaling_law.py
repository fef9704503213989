"""k-bit scaling law (Dettmers & Zettlemoyer 2023): accuracy against total model bits.

Weight-only quantization of every model size the study has trained (VGG-11, VGG-16, VGG-19
baselines, and the 70%-channel-pruned VGG-11 unless --no-with-pruned) for k in {2,3,4,5,6,8} and 16,
integer and NF-k (normal-quantile) data types, per-channel and 32-input groups. PTQ for all;
QAT (one fine-tune epoch by default) on VGG-11 for k in --qat-bits. Accuracy is top-1 on the test
split, simulated (fp32 arithmetic on rounded weights); total_bits counts codes, float16 block
scales and every other tensor at 16 bits; size_bytes is the real packed file.
The bit-optimal k is the k owning most points of the accuracy-vs-total-bits Pareto frontier.

Writes results/<dataset>-<profile>/quantization/scaling_law.csv, scaling_law_frontier.csv,
scaling_law.png and scaling_law_vgg11.png.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args, positive_int  # noqa: E402
from quantization.settings import K_BITS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--models", nargs="+", default=["vgg11", "vgg16", "vgg19"],
                        help="baselines to quantize (each is trained and cached if missing)")
    parser.add_argument("--with-pruned", action=argparse.BooleanOptionalAction, default=True,
                        help="add the 70%%-channel-pruned VGG-11 of the pruning study (built if missing; "
                             "the study does)")
    parser.add_argument("--bits", type=int, nargs="+", default=list(K_BITS))
    parser.add_argument("--qat-bits", type=int, nargs="*", default=[2, 3, 4],
                        help="k values that also get QAT on VGG-11 (none: PTQ only)")
    parser.add_argument("--qat-epochs", type=positive_int, default=1)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.baselines import get_baseline
    from common.cli import RunContext
    from common.results import write_results
    from quantization.plots import plot_bits_vs_k, plot_scaling_law
    from quantization.scaling_law import bit_optimal, ptq_sweep, qat_sweep
    from quantization.study import BASE_MODEL, TASK

    ctx = RunContext.from_args(args)
    models = {name: get_baseline(ctx, name)[0] for name in args.models}
    if args.with_pruned:
        from pruning.study import get_structured_final
        models["vgg11-channel-pruned"] = get_structured_final(ctx)[0]
    rows = ptq_sweep(models, ctx, tuple(args.bits))
    if args.qat_bits:
        base = models.get(BASE_MODEL) or get_baseline(ctx, BASE_MODEL)[0]
        rows += qat_sweep(BASE_MODEL, base, ctx, tuple(args.qat_bits), args.qat_epochs)
    frontier = bit_optimal(rows)
    out = ctx.results_dir(TASK)
    prov = ctx.provenance(models=list(models), bits=args.bits, qat_bits=args.qat_bits,
                          qat_epochs=args.qat_epochs)
    write_results(rows, out / "scaling_law.csv", prov)
    write_results(frontier, out / "scaling_law_frontier.csv", prov)
    plot_scaling_law(rows, out / "scaling_law.png")
    plot_bits_vs_k(rows, BASE_MODEL, out / "scaling_law_vgg11.png")
    for key in dict.fromkeys((r["data_type"], r["block"], r["bit_optimal_k"]) for r in frontier):
        print(f"[scaling] {key[0]} {key[1]}: bit-optimal k = {key[2]}")


if __name__ == "__main__":
    main()
