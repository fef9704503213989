"""Fixtures: a tiny, learnable CIFAR-10 and CIFAR-100 written in the real pickle layouts.

Each class has its own colour and a bright square at a class-dependent place, plus noise, so a
small network learns it in a few steps; the real loader reads these files exactly as it reads
the downloaded datasets.
"""

from __future__ import annotations

import csv
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

TRAIN_PER_BATCH = 160   # CIFAR-10: five training batches -> 800 images
TEST_IMAGES = 300


def synthetic_images(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """uint8 [N,3072] rows (RGB planes) whose content depends on the label."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    colours = np.random.default_rng(1234).integers(30, 225, size=(num_classes, 3))
    images = rng.normal(0, 20, size=(n, 3, 32, 32)) + colours[labels][:, :, None, None]
    for i, label in enumerate(labels):
        y, x = divmod(int(label) % 16, 4)
        images[i, :, 2 + 7 * y: 8 + 7 * y, 2 + 7 * x: 8 + 7 * x] += 80
    return np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072)


def _dump(path: Path, entry: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(entry, f)


def write_cifar10(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for b in range(1, 6):
        labels = rng.integers(0, 10, TRAIN_PER_BATCH)
        _dump(folder / f"data_batch_{b}", {"batch_label": f"training batch {b} of 5",
                                            "labels": labels.tolist(),
                                            "data": synthetic_images(labels, 10, b),
                                            "filenames": [f"{b}_{i}.png" for i in range(len(labels))]})
    labels = rng.integers(0, 10, TEST_IMAGES)
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": labels.tolist(),
                                  "data": synthetic_images(labels, 10, 99), "filenames": []})
    _dump(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    return root


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, n, seed in (("train", 5 * TRAIN_PER_BATCH, 7), ("test", TEST_IMAGES, 8)):
        fine = rng.integers(0, 100, n)
        _dump(folder / split, {"fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
                               "data": synthetic_images(fine, 100, seed), "filenames": []})
    _dump(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    return root


def write_damaged_cifar10(root: Path) -> Path:
    """A CIFAR-10 folder whose every pickle is present but not a pickle: the runner finds the data,
    each stage that loads it fails with one line (``common.data.load_cifar``)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"not a pickle")
    return root


def pretend_the_data_is_there(monkeypatch) -> None:
    """Stand in ``common.data.ensure_dataset`` for a runner whose stages are faked: any data folder
    (even one that does not exist) counts as holding the dataset, and nothing is downloaded."""
    from common import data

    monkeypatch.setattr(data, "ensure_dataset", lambda name, root, download=True: Path(root))


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """A data root holding both tiny datasets."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root)
    write_cifar100(root)
    return root


@pytest.fixture
def isolated_outputs(tmp_path, monkeypatch) -> Path:
    """Send results/, checkpoints/ and the runner's logs of the code under test to a temporary folder."""
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


ROOT = Path(__file__).resolve().parents[1]


SMOKE_VARIANT = "test"                       # the variant smoke_scripts runs write into
SMOKE_RUN = f"cifar10-smoke+{SMOKE_VARIANT}"  # ... its results/ and checkpoints/ folder


def run_smoke_scripts(tmp: Path, cifar_root: Path, task: str, scripts: list[tuple[str, ...]]) -> Path:
    """Run ``task``'s numbered scripts, each given as (name, *extra flags), in order, through their
    ``main(argv)`` on the smoke profile and the tiny CIFAR-10, with results/ and checkpoints/
    under ``tmp``, all in one named variant (``--variant test``: their extra flags make smaller
    runs than the study's, which a variant's folder keeps apart, ``SMOKE_RUN``). Returns ``tmp``."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RESULTS_DIR", str(tmp / "results"))
    mp.setenv("CHECKPOINT_DIR", str(tmp / "checkpoints"))
    try:
        for name, *extra in scripts:
            spec = importlib.util.spec_from_file_location(name, ROOT / task / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.main(["--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root),
                         "--no-progress", "--variant", SMOKE_VARIANT, *extra])
    finally:
        mp.undo()
    return tmp


@pytest.fixture(scope="session")
def smoke_scripts():
    """``run_smoke_scripts``, for module-scoped fixtures that run a task's scripts once."""
    return run_smoke_scripts


def _write_csv(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` (dicts with the same keys) as a CSV at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def write_csv():
    """A function writing hand-made rows as a results CSV, for tests of code that reads them."""
    return _write_csv


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting modules save, kept for inspection (they are still written)."""
    import combined.pareto as pareto
    import pruning.plots as pruning_plots
    import quantization.plots as quantization_plots

    figures = []
    for module in (pareto, pruning_plots, quantization_plots):
        real = module.save_figure

        def keep(fig, path, real=real):
            figures.append(fig)
            return real(fig, path)
        monkeypatch.setattr(module, "save_figure", keep)
    return figures
