"""Channel-pruning sensitivity: each conv of VGG-11 loses a fraction of its output channels
(smallest L2 filter norm first; BatchNorm and the next layer's inputs follow), alone, over a
ratio grid; validation top-1 without fine-tuning.

Writes results/<dataset>-<profile>/pruning/structured_sensitivity.csv (layer: the module name,
layer_name: the paper's name, conv1..conv8, as the figure names it; ratio, channels_before,
channels_after, params_fraction, top1_acc) and structured_sensitivity.png.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from pruning import kinds  # noqa: E402
from pruning.cli import sensitivity_parser  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    return sensitivity_parser(kinds.STRUCTURED, __doc__)


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from pruning.study import STRUCTURED, run_sensitivity

    run_sensitivity(RunContext.from_args(args), STRUCTURED, args.grid)


if __name__ == "__main__":
    main()
