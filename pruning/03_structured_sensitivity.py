"""Channel-pruning sensitivity: each conv of VGG-11 loses a fraction of its output channels
(smallest L2 filter norm first; BatchNorm and the next layer's inputs follow), alone, over a
ratio grid; validation top-1 without fine-tuning.

Writes results/<dataset>-<profile>/pruning/structured_sensitivity.csv (layer, ratio,
channels_before, channels_after, params_fraction, top1_acc) and structured_sensitivity.png.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.cli import RunContext, add_common_args  # noqa: E402
from pruning.study import STRUCTURED, run_sensitivity  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--grid", type=float, nargs="+", default=list(STRUCTURED.grid),
                        help="channel ratios (fractions removed) to try per conv")
    args = parser.parse_args(argv)
    run_sensitivity(RunContext.from_args(args), STRUCTURED, args.grid)


if __name__ == "__main__":
    main()
