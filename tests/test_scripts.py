"""Smoke runs of the entry points, as a user runs them, on the tiny fixture dataset."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.results import read_rows

ROOT = Path(__file__).resolve().parents[1]


def run(args, env_extra, tmp_path):
    env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"),
           "CHECKPOINT_DIR": str(tmp_path / "checkpoints"), "PYTHON": sys.executable, **env_extra}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_train_writes_baselines_and_reuses_the_cache(cifar_root, tmp_path):
    cmd = [sys.executable, "-m", "common.train", "--profile", "smoke", "--dataset", "cifar10",
           "--data-dir", str(cifar_root), "--no-progress", "--model", "vgg11", "vgg16"]
    first = run(cmd, {}, tmp_path)
    assert first.returncode == 0, first.stderr
    rows = read_rows(tmp_path / "results" / "cifar10-smoke" / "baselines" / "baselines.csv")
    assert [r["model"] for r in rows] == ["vgg11", "vgg16"]
    assert all(r["dataset"] == "cifar10" and r["profile"] == "smoke" and r["epochs"] == "1" for r in rows)
    assert (tmp_path / "results" / "cifar10-smoke" / "baselines" / "baselines.json").exists()
    assert (tmp_path / "checkpoints" / "cifar10-smoke" / "vgg11_seed0.pt").exists()
    second = run(cmd[:-2] + ["vgg11"], {}, tmp_path)
    assert second.returncode == 0 and "[cache] vgg11_seed0" in second.stdout
    rows_again = read_rows(tmp_path / "results" / "cifar10-smoke" / "baselines" / "baselines.csv")
    assert rows_again == rows  # vgg16's row kept, vgg11's row identical from the cache


def test_benchmark_prints_images_per_second_last(cifar_root, tmp_path):
    cmd = [sys.executable, "-m", "study.benchmark", "--profile", "smoke", "--dataset", "cifar10",
           "--data-dir", str(cifar_root), "--width", "0.125", "--steps", "2", "--warmup", "1",
           "--batch-size", "32", "--compare"]
    out = run(cmd, {}, tmp_path)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("train_images_per_second=") and float(last.split("=")[1]) > 0
    assert "textbook_images_per_second=" in out.stdout and "speedup=" in out.stdout
    rows = read_rows(tmp_path / "results" / "cifar10-smoke" / "benchmark" / "throughput_vgg11_w0.125.csv")
    assert [r["pipeline"] for r in rows] == ["textbook", "fast"]
    assert float(rows[1]["train_images_per_second"]) == float(last.split("=")[1])


def test_benchmark_without_warm_up_still_measures(cifar_root, tmp_path):
    """--warmup 0 used to divide by zero (the first and last clock reads were the same step)."""
    cmd = [sys.executable, "-m", "study.benchmark", "--profile", "smoke", "--dataset", "cifar10",
           "--data-dir", str(cifar_root), "--width", "0.125", "--steps", "2", "--warmup", "0",
           "--batch-size", "32"]
    out = run(cmd, {}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1].split("=")[1]) > 0


def test_missing_dataset_stops_with_the_expected_path(tmp_path):
    cmd = [sys.executable, "-m", "common.train", "--profile", "smoke", "--dataset", "cifar100",
           "--data-dir", str(tmp_path / "nowhere"), "--model", "vgg11"]
    out = run(cmd, {}, tmp_path)
    assert out.returncode != 0
    assert "cifar-100-python" in out.stderr and "nowhere" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) <= 2   # one clear line


@pytest.mark.skipif(sys.platform == "win32", reason="bash script")
def test_run_all_smoke_runs_skips_and_reports_failures(cifar_root, tmp_path):
    env = {"PROFILE": "smoke", "DATASET": "cifar10", "CIFAR_DIR": str(cifar_root)}
    first = run(["./run_all.sh"], env, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "results" / "cifar10-smoke"
    assert (out / "baselines" / "baselines.csv").exists()
    assert (out / "combined" / "pipelines.csv").exists() and (out / "combined" / "pareto.png").exists()
    if shutil.which("pdflatex"):   # CI installs texlive: the report really builds from smoke results
        assert (out / "report.pdf").stat().st_size > 100_000, first.stdout[-3000:]
    else:
        assert "LaTeX is not installed" in first.stdout
    again = run(["./run_all.sh"], env, tmp_path)
    assert again.returncode == 0 and "skip baselines" in again.stdout
    broken = run(["./run_all.sh"], {**env, "DATASET": "cifar100", "CIFAR_DIR": str(tmp_path / "nowhere")},
                 tmp_path)
    assert broken.returncode != 0 and "FAILED at stage 'baselines'" in broken.stderr


def test_a_baselines_stage_missing_one_of_its_models_trains_it(cifar_root, tmp_path):
    """The bug: after ``common.train --model vgg11 vgg16`` the baselines stage was 'up to date'
    (its CSV was newer than the checkpoints) with no VGG-19. A run outside the runner leaves no
    completion record, so the stage runs and trains what is missing."""
    common = ["--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--no-progress"]
    alone = run([sys.executable, "-m", "common.train", *common, "--model", "vgg11", "vgg16"], {}, tmp_path)
    assert alone.returncode == 0, alone.stderr
    stage = run(["./run_all.sh", "baselines", "--no-report"],
                {"PROFILE": "smoke", "DATASET": "cifar10", "CIFAR_DIR": str(cifar_root)}, tmp_path)
    assert stage.returncode == 0, stage.stdout + stage.stderr
    assert "no completion record" in stage.stdout
    assert (tmp_path / "checkpoints" / "cifar10-smoke" / "vgg19_seed0.pt").exists()
    rows = read_rows(tmp_path / "results" / "cifar10-smoke" / "baselines" / "baselines.csv")
    assert [r["model"] for r in rows] == ["vgg11", "vgg16", "vgg19"]
