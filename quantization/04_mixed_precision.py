"""Mixed precision: uniform bits vs first/last kept at float16 vs adaptive per-layer bits.

Per-layer sensitivities (hessian_trace.csv): Hutchinson's estimate of each weight's Hessian
trace on validation images (HAWQ-v2) and each layer input's mean square on training images.
Configurations (weight-only, per-channel integer codes, simulated): (i) uniform int8/int4/int3/
int2; (ii) first conv and last linear at float16, the rest at int4/int3/int2; (iii) adaptive
bits in {2,3,4,5,6,8,16} per layer, greedily allocated from the Hessian or the activation
sensitivity under exactly the total-bits budget of (ii). The allocation reads only validation /
training data; top-1 is on the test split (validation top-1 beside it, for any choice).
size_bytes is the real packed file. These configurations are simulated and carry no latency (no
mixed-bit kernel exists). Real-kernel rows beside them: fp32, int8 W8A8 (PT2E) everywhere, and
int8 with the first conv and last linear in fp32 (the X86 quantizer's per-module configuration;
the file stores those two layers in float16), all timed in one interleaved session at batch 256.

Writes results/<dataset>-<profile>/quantization/hessian_trace.csv, mixed_precision.csv and
mixed_precision.png.
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
    parser.add_argument("--low-bits", type=int, nargs="+", default=[4, 3, 2],
                        help="the low bit width of rule (ii), one budget each")
    parser.add_argument("--hessian-images", type=positive_int, default=1024)
    parser.add_argument("--hutchinson-samples", type=positive_int, default=64)
    parser.add_argument("--rounds", type=int, default=15,
                        help="timing rounds of the real-kernel models (each once per round, in turns)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cache import weights_sha256
    from common.cli import RunContext
    from common.results import write_results
    from quantization.mixed_precision import config_rows, configurations, sensitivity_rows
    from quantization.plots import plot_mixed_precision
    from quantization.study import TASK, base_model

    ctx = RunContext.from_args(args)
    base, _ = base_model(ctx)
    base_sha = weights_sha256(base)
    key = ctx.artefact_key({"hessian_images": args.hessian_images, "hutchinson_samples": args.hutchinson_samples},
                           {"base model": base_sha}, "quantization.mixed_precision")
    sens = ctx.cached_rows(TASK, "hessian_trace.csv",
                           lambda: sensitivity_rows(base, ctx, args.hessian_images, args.hutchinson_samples), key,
                           base_weights_sha256=base_sha)
    rows = config_rows(base, ctx, configurations(base, sens, args.low_bits), args.rounds)
    out = ctx.results_dir(TASK)
    write_results(rows, out / "mixed_precision.csv",
                  ctx.provenance(base_weights_sha256=base_sha, low_bits=args.low_bits))
    plot_mixed_precision(rows, out / "mixed_precision.png")


if __name__ == "__main__":
    main()
