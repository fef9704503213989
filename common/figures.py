"""Saving figures the way the report uses them: a PNG for people and a PDF for LaTeX, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

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


def plot_cam_grid(images: torch.Tensor, cams: dict[str, np.ndarray], labels: list[str], path: Path,
                  rows_shown: int = 8) -> Path:
    """Rows of images; columns: the image, then each model's Grad-CAM over it."""
    n = min(rows_shown, len(images))
    names = list(cams)
    fig, axes = plt.subplots(n, 1 + len(names), figsize=(1.6 * (1 + len(names)), 1.6 * n), squeeze=False)
    for i in range(n):
        img = images[i].permute(1, 2, 0).cpu().numpy()
        axes[i, 0].imshow(img)
        axes[i, 0].set_ylabel(labels[i], fontsize=9)
        for j, name in enumerate(names, start=1):
            axes[i, j].imshow(img)
            axes[i, j].imshow(cams[name][i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if i == 0:
                axes[i, j].set_title(name, fontsize=10)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("image", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
