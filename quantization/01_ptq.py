"""Post-training quantization of the trained VGG-11 to fp16, bf16, int8 and int4.

Calibration (activation ranges) uses 2048 training images; accuracy is top-1 on the test split.
Every row says how its number was obtained: fp16/bf16 (eager, and compiled with Inductor) and
the PT2E int8 model run real low-precision kernels (int8 compiled with Inductor freezing, its int8 kernels counted in
int8_kernels); rows marked simulated=yes run fp32 arithmetic on values rounded to the format
(this study's fake-quantizers, for formats with no CPU kernel).
size_bytes is a real file in checkpoints/<dataset>-<profile>/quantized/: the state_dict in the
cast dtype, the PT2E int8 model as a saved torch.export program (int8_pt2e.pt2; its accuracy
and latency are those of the model loaded back from it), torchao's own int4 state_dict, or this
study's packed format for the simulated rows (codes packed bits-per-value, float16 scales and
BatchNorm). Latency (common.timing): batch 256, every
real-kernel model in one session, warm-up then the median over rounds taken in turns.

Writes results/<dataset>-<profile>/quantization/ptq.csv.
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
    parser.add_argument("--rounds", type=positive_int, default=20,
                        help="timing rounds (every real-kernel model once per round, in turns)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.results import write_results
    from quantization.formats import ptq_rows
    from quantization.study import TASK, base_model

    ctx = RunContext.from_args(args)
    base, meta = base_model(ctx)
    rows = ptq_rows(base, ctx, args.rounds)
    write_results(rows, ctx.results_dir(TASK) / "ptq.csv",
                  ctx.provenance(base_checkpoint_utc=meta["trained_utc"], latency_rounds=args.rounds))


if __name__ == "__main__":
    main()
