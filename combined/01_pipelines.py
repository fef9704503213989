"""Combined compression pipelines: techniques composed on one model, every stage measured.

  kd_prune_int8        KD student -> 70% unstructured pruning + fine-tune -> int8 PTQ (PT2E)
  structured_int8_qat  70% channel-pruned VGG-11 -> int8 QAT (PT2E)
  kd_int4_qat          KD student -> W4A4 PTQ -> W4A4 QAT (simulated)

Start models come from the other tasks' caches (trained if missing). Per stage: test top-1, the
bytes of a real file (checkpoints/<dataset>-<profile>/combined/), batch-256 latency under
torch.compile where a real kernel runs the format (blank for simulated stages).

Writes results/<dataset>-<profile>/combined/pipelines.csv (pipeline, stage, step, top1_acc,
size_bytes, size_format, weight_sparsity, simulated, latency_ms, ...).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from combined.pipelines import PIPELINES, TASK, run_pipeline  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.results import write_results  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--pipelines", nargs="+", choices=list(PIPELINES), default=list(PIPELINES),
                        help="pipelines to run (default: all three)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per latency reading")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    rows = [row for name in args.pipelines for row in run_pipeline(ctx, name, args.repeats)]
    write_results(rows, ctx.results_dir(TASK) / "pipelines.csv",
                  ctx.provenance(latency_repeats=args.repeats, pipelines=args.pipelines))


if __name__ == "__main__":
    main()
