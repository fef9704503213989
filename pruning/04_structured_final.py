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

from common.cli import RunContext, add_common_args  # noqa: E402
from pruning.study import STRUCTURED, write_final  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--reduction", type=float, default=0.7, help="fraction of parameters to remove (0.7 keeps ~30%%)")
    parser.add_argument("--force", action="store_true", help="redo even if the model is cached")
    args = parser.parse_args(argv)
    write_final(RunContext.from_args(args), STRUCTURED, args.reduction, force=args.force)


if __name__ == "__main__":
    main()
