"""Compare two results folders of the same profile: every CSV's accuracy, size and count columns.

    python tests/compare_results.py BEFORE/results/cifar10-smoke AFTER/results/cifar10-smoke

For a change that should not move any number (a restructuring): every CSV present in both
folders must have the same rows and the same value in every column that is not a time, a
latency, a machine-load reading or provenance. Prints one line per file and, last,
``compared=N differing=M``; exits 1 when a file differs or is missing from one side.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

# Columns that hold what a run cost or when and where it ran, not what it measured.
NOT_COMPARED = ("seconds", "latency", "_ms", "load_avg", "cpu_per_wall", "cpu_fraction", "session", "utc",
                "images_per_second", "warning", "device", "threads")


def compared_columns(header: list[str]) -> list[str]:
    """The columns of ``header`` that hold accuracies, sizes, counts or labels."""
    return [c for c in header if not any(part in c for part in NOT_COMPARED)]


def read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def differences(before: Path, after: Path) -> list[str]:
    """What differs between two CSVs in their compared columns ('' entries: none)."""
    header_a, rows_a = read(before)
    header_b, rows_b = read(after)
    columns = compared_columns(header_a)
    if compared_columns(header_b) != columns:
        return [f"columns differ: {columns} vs {compared_columns(header_b)}"]
    if len(rows_a) != len(rows_b):
        return [f"{len(rows_a)} rows vs {len(rows_b)}"]
    return [f"row {i} {c}: {a[c]!r} vs {b[c]!r}" for i, (a, b) in enumerate(zip(rows_a, rows_b))
            for c in columns if a[c] != b[c]]


def main(argv: list[str] | None = None) -> int:
    before, after = (Path(p) for p in (argv or sys.argv[1:]))
    names = sorted({p.relative_to(before) for p in before.rglob("*.csv")} |
                   {p.relative_to(after) for p in after.rglob("*.csv")})
    differing = 0
    for name in names:
        if not (before / name).exists() or not (after / name).exists():
            print(f"{name}: only in {'after' if not (before / name).exists() else 'before'}")
            differing += 1
            continue
        found = differences(before / name, after / name)
        differing += bool(found)
        print(f"{name}: {'same' if not found else '; '.join(found[:3])}")
    print(f"compared={len(names)} differing={differing}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
