"""Command lines shared by the numbered pruning scripts that differ only in the kind of pruning.

Built from ``pruning.kinds`` (names and grids, no torch): a script's ``--help`` imports no model."""

from __future__ import annotations

import argparse

from common.flags import StageParser, add_common_args, fraction, fraction_up_to
from pruning.kinds import FINAL_TARGET, KindNames


def _parser(description: str) -> argparse.ArgumentParser:
    return add_common_args(StageParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter))


def sensitivity_parser(kind: KindNames, description: str) -> argparse.ArgumentParser:
    """``--grid`` plus the common flags."""
    parser = _parser(description)
    parser.add_argument("--grid", type=fraction, nargs="+", default=list(kind.grid),
                        help=f"values of the layer's {kind.x_key} (fractions) to try, one layer at a time")
    return parser


def final_parser(kind: KindNames, description: str, target_help: str) -> argparse.ArgumentParser:
    """``--<target_key>`` (default ``FINAL_TARGET``) and ``--force`` plus the common flags."""
    parser = _parser(description)
    parser.add_argument(f"--{kind.target_key}", type=fraction_up_to(kind.reachable), default=FINAL_TARGET,
                        help=f"{target_help}, in [0, {kind.reachable:g}] (what the sweep's grid can reach)")
    parser.add_argument("--force", action="store_true", help="redo even if the model is cached")
    return parser
