"""Combined compression pipelines: techniques composed on one model, every stage measured.

  kd_prune_int8        KD student -> 70% unstructured pruning + fine-tune -> int8 PTQ (PT2E)
  structured_int8_qat  70% channel-pruned VGG-11 -> int8 QAT (PT2E)
  kd_int4_qat          KD student -> W4A4 PTQ -> W4A4 QAT (simulated)

Start models come from the other tasks' caches (trained if missing). Per stage: validation and
test top-1, the bytes of a real file (checkpoints/<dataset>-<profile>/combined/), and batch-256
latency where a real kernel runs the format (blank for simulated stages), every stage of every
pipeline timed in one interleaved session (common.timing).

Writes results/<dataset>-<profile>/combined/pipelines.csv (pipeline, stage, step, top1_acc,
size_bytes, size_format, weight_sparsity, simulated, latency_ms, ...).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from combined.names import PIPELINE_NAMES  # noqa: E402
from common.flags import StageParser, add_common_args, positive_int  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--pipelines", nargs="+", choices=list(PIPELINE_NAMES), default=list(PIPELINE_NAMES),
                        help="pipelines to run (default: all three)")
    parser.add_argument("--rounds", type=positive_int, default=20,
                        help="timing rounds (every real-kernel stage once per round, in turns)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from combined.pipelines import TASK, run_pipelines
    from common.cli import RunContext
    from common.results import write_results

    ctx = RunContext.from_args(args)
    rows = run_pipelines(ctx, args.pipelines, args.rounds)
    write_results(rows, ctx.results_dir(TASK) / "pipelines.csv",
                  ctx.provenance(latency_rounds=args.rounds, pipelines=args.pipelines))


if __name__ == "__main__":
    main()
