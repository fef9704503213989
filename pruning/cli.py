"""Command lines shared by the numbered pruning scripts that differ only in the kind of pruning."""

from __future__ import annotations

import argparse

from common.cli import RunContext, add_common_args
from pruning.study import PruningKind, run_sensitivity, write_final


def _parser(description: str) -> argparse.ArgumentParser:
    return add_common_args(argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter))


def sensitivity_main(kind: PruningKind, description: str, argv: list[str] | None = None) -> None:
    """``--grid`` plus the common flags; runs ``run_sensitivity`` for ``kind``."""
    parser = _parser(description)
    parser.add_argument("--grid", type=float, nargs="+", default=list(kind.grid),
                        help=f"values of the layer's {kind.x_key} (fractions) to try, one layer at a time")
    args = parser.parse_args(argv)
    run_sensitivity(RunContext.from_args(args), kind, args.grid)


def final_main(kind: PruningKind, description: str, target_help: str,
               argv: list[str] | None = None) -> None:
    """``--<target_key>`` (default 0.7) and ``--force`` plus the common flags; runs ``write_final``."""
    parser = _parser(description)
    parser.add_argument(f"--{kind.target_key}", type=float, default=0.7, help=target_help)
    parser.add_argument("--force", action="store_true", help="redo even if the model is cached")
    args = parser.parse_args(argv)
    write_final(RunContext.from_args(args), kind, getattr(args, kind.target_key), force=args.force)
