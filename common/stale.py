"""Is a stage's output stale? ``run_all.sh`` asks before it runs or skips a stage.

    python -m common.stale OUTPUT [INPUT ...]     # exit 0: run the stage (and say why); 1: up to date

A stage's output is stale when it does not exist, or when any input that exists (a results CSV
or a checkpoint the stage reads) was modified after it. Inputs that do not exist are not
compared: a stage that finds no checkpoint trains or loads what it needs itself. Standard
library only, so asking costs milliseconds.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def stale_reason(output: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> str | None:
    """Why ``output`` must be rebuilt ('... is missing', '<input> is newer than ...'), or None
    when it exists and no existing input is newer (by modification time)."""
    if not os.path.exists(output):
        return f"{output} is missing"
    built = os.path.getmtime(output)
    for path in inputs:
        if os.path.exists(path) and os.path.getmtime(path) > built:
            return f"{path} is newer than {output}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m common.stale OUTPUT [INPUT ...]", file=sys.stderr)
        return 2
    reason = stale_reason(args[0], args[1:])
    if reason:
        print(reason)
    return 0 if reason else 1


if __name__ == "__main__":
    sys.exit(main())
