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

from pruning import kinds  # noqa: E402
from pruning.cli import final_parser  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    return final_parser(kinds.STRUCTURED, __doc__, "fraction of parameters to remove (0.7 keeps ~30%%)")


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from pruning.study import STRUCTURED, write_final

    write_final(RunContext.from_args(args), STRUCTURED, getattr(args, STRUCTURED.target_key),
                force=args.force)


if __name__ == "__main__":
    main()
