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

from pruning import kinds  # noqa: E402
from pruning.cli import final_parser  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    return final_parser(kinds.UNSTRUCTURED, __doc__, "overall sparsity of conv+linear weights (fraction)")


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from pruning.study import UNSTRUCTURED, write_final

    write_final(RunContext.from_args(args), UNSTRUCTURED, getattr(args, UNSTRUCTURED.target_key),
                force=args.force)


if __name__ == "__main__":
    main()
