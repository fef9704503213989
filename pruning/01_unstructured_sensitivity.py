"""Unstructured sensitivity: each conv/linear layer of VGG-11 magnitude-pruned alone over a
sparsity grid, validation top-1 after each (no fine-tuning).

Writes results/<dataset>-<profile>/pruning/unstructured_sensitivity.csv (layer, sparsity, params,
top1_acc) and unstructured_sensitivity.png (one curve per layer).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.cli import RunContext, add_common_args  # noqa: E402
from pruning.study import UNSTRUCTURED, run_sensitivity  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--grid", type=float, nargs="+", default=list(UNSTRUCTURED.grid),
                        help="sparsities (fractions) to try per layer")
    args = parser.parse_args(argv)
    run_sensitivity(RunContext.from_args(args), UNSTRUCTURED, args.grid)


if __name__ == "__main__":
    main()
