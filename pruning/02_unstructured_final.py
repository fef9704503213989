"""Unstructured pruning to a target overall sparsity (default 70% of conv+linear weights) with
per-layer ratios chosen from the sensitivity sweep, then fine-tuned with the masks in place.

The rule (reproducible from unstructured_sensitivity.csv): every layer gets the same budget of
validation-accuracy drop, delta points; each layer takes the largest sparsity whose single-layer
drop stays within delta (linear interpolation on the sweep's monotone envelope, capped at the
largest grid value); delta is bisected until the overall sparsity reaches the target. Layers that
tolerate pruning get more of it, and no layer is pushed past the point where it alone would cost
more than the others.

Writes results/<dataset>-<profile>/pruning/unstructured_final.csv (layer, chosen_sparsity, params,
zeros, sparsity) and caches the model in checkpoints/.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.cli import RunContext, add_common_args  # noqa: E402
from pruning.study import UNSTRUCTURED, write_final  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--target", type=float, default=0.7, help="overall sparsity (fraction)")
    parser.add_argument("--force", action="store_true", help="redo even if the model is cached")
    args = parser.parse_args(argv)
    write_final(RunContext.from_args(args), UNSTRUCTURED, args.target, force=args.force)


if __name__ == "__main__":
    main()
