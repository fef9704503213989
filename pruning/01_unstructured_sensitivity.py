"""Unstructured sensitivity: each conv/linear layer of VGG-11 magnitude-pruned alone over a
sparsity grid, validation top-1 after each (no fine-tuning).

Writes results/<dataset>-<profile>/pruning/unstructured_sensitivity.csv (layer: the module name,
layer_name: the paper's name, conv1.. fc2, as the figure names it; sparsity, params, top1_acc) and
unstructured_sensitivity.png (one curve per layer).
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
    return sensitivity_parser(kinds.UNSTRUCTURED, __doc__)


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from pruning.study import UNSTRUCTURED, run_sensitivity

    run_sensitivity(RunContext.from_args(args), UNSTRUCTURED, args.grid)


if __name__ == "__main__":
    main()
