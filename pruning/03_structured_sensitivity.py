"""Channel-pruning sensitivity: each conv of VGG-11 loses a fraction of its output channels
(smallest L2 filter norm first; BatchNorm and the next layer's inputs follow), alone, over a
ratio grid; validation top-1 without fine-tuning.

Writes results/<dataset>-<profile>/pruning/structured_sensitivity.csv (layer, ratio,
channels_before, channels_after, params_fraction, top1_acc) and structured_sensitivity.png.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from pruning.cli import sensitivity_main  # noqa: E402
from pruning.study import STRUCTURED  # noqa: E402


def main(argv=None):
    sensitivity_main(STRUCTURED, __doc__, argv)


if __name__ == "__main__":
    main()
