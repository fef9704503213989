"""Saving figures the way the report uses them: a PNG for people and a PDF for LaTeX, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on the study's machines
import matplotlib.pyplot as plt  # noqa: E402

from common.results import atomic_path  # noqa: E402


def save_figure(fig: "plt.Figure", png_path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write ``fig`` to ``png_path`` and the same stem as ``.pdf``; close it; return the PNG path."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:])
    plt.close(fig)
    print(f"[figure] wrote {png_path} (+ .pdf)")
    return png_path
