"""Unstructured sensitivity: each conv/linear layer of VGG-11 magnitude-pruned alone over a
sparsity grid, validation top-1 after each (no fine-tuning).

Writes results/<dataset>-<profile>/pruning/unstructured_sensitivity.csv (layer, sparsity, params,
top1_acc) and unstructured_sensitivity.png (one curve per layer).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from pruning.cli import sensitivity_main  # noqa: E402
from pruning.study import UNSTRUCTURED  # noqa: E402


def main(argv=None):
    sensitivity_main(UNSTRUCTURED, __doc__, argv)


if __name__ == "__main__":
    main()
