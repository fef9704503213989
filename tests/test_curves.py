"""Training curves: rows per model and epoch, one line per model (seeds as a mean and a band),
and TensorBoard event files that read back as the history ``fit`` returned."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import common.figures
from common.curves import TENSORBOARD_DIR, curve_rows, plot_curves

ROOT = Path(__file__).resolve().parents[1]


def history(epochs: int, offset: float) -> list[dict]:
    return [{"epoch": e, "train_loss": 2.0 - 0.1 * e + offset, "train_acc": 10.0 * e, "val_top1_acc": 20.0 + e + offset,
             "lr": 0.1, "seconds": 1.0} for e in range(1, epochs + 1)]


def test_curve_rows_split_the_seed_off_the_name_and_keep_every_epoch():
    rows = curve_rows("student_label_smoothing_none_seed2", history(3, 0.0), method="label_smoothing")
    assert [(r["model"], r["seed"], r["epoch"], r["method"]) for r in rows] == [
        ("student_label_smoothing_none", 2, e, "label_smoothing") for e in (1, 2, 3)]
    assert curve_rows("qat-int8", history(1, 0.0))[0]["seed"] == ""


def test_seeds_of_one_model_are_one_line_their_mean_with_a_band_spanning_them(tmp_path, monkeypatch):
    figures, real = [], common.figures.save_figure
    monkeypatch.setattr(common.figures, "save_figure", lambda fig, path: (figures.append(fig), real(fig, path))[1])
    rows = [r for seed in (0, 1, 2) for r in curve_rows(f"student_kd_vgg16_seed{seed}", history(4, 2.0 * seed))]
    rows += curve_rows("student_independent_none_seed0", history(4, 0.0))
    path = plot_curves(rows, tmp_path / "curves.png", "students", label=lambda m: m.split("_")[1])
    assert path.exists() and path.with_suffix(".pdf").exists()
    loss_ax, val_ax = figures[0].axes
    assert len(val_ax.lines) == 2 and len(val_ax.collections) == 1      # the three seeds: one line, one band
    kd = val_ax.lines[0]
    assert list(kd.get_ydata()) == pytest.approx([22.0 + e for e in range(1, 5)])   # mean of offsets 0, 2, 4
    band = val_ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(21.0) and band.max() == pytest.approx(28.0)  # lowest to highest seed
    labels = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert labels == ["kd (mean of 3 seeds)", "independent"]


def test_tensorboard_event_files_read_back_as_the_history(tmp_path, monkeypatch, cifar_root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from common.data import load_splits
    from common.models import build_model
    from common.training import Recipe, fit

    monkeypatch.setenv(TENSORBOARD_DIR, str(tmp_path / "tb"))
    splits = load_splits("cifar10", cifar_root, val_images=64, train_images=128)
    torch.manual_seed(0)
    trained = fit(build_model("vgg11", 10, 0.125), splits, Recipe(epochs=2, batch_size=64, bf16=False), "cpu",
                  progress=False, desc="tiny_seed0")
    events = EventAccumulator(str(tmp_path / "tb" / "tiny_seed0"))
    events.Reload()
    for key in ("train_loss", "train_acc", "val_top1_acc", "lr"):
        read = events.Scalars(key)
        assert [e.step for e in read] == [1, 2]
        assert [e.value for e in read] == pytest.approx([h[key] for h in trained], rel=1e-6)


def test_without_the_flag_no_tensorboard_is_imported_or_written(tmp_path):
    code = ("import sys, common.cli, common.training, common.curves; "
            "assert common.curves.tensorboard_writer('x') is None; "
            "assert not any(m.startswith('tensorboard') for m in sys.modules), 'tensorboard imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
