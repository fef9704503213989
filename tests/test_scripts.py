"""Smoke runs of the entry points, as a user runs them, on the tiny fixture dataset."""

import json
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
           "CHECKPOINT_DIR": str(tmp_path / "checkpoints"), "LOG_DIR": str(tmp_path / "logs"),
           "PYTHON": sys.executable, **env_extra}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_script_alone_does_the_studys_work_and_flags_make_a_variant_beside_it(cifar_root, tmp_path):
    """The bug: a script run with other flags (a subset of the models, another seed) wrote over
    the study's results, and a stage then called them up to date. Now a run with flags that
    change the work is a variant in its own folder; with none it does what the study does."""
    cmd = [sys.executable, "-m", "common.train", "--profile", "smoke", "--dataset", "cifar10",
           "--data-dir", str(cifar_root), "--no-progress"]
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    one = run(cmd + ["--model", "vgg11"], {}, tmp_path)
    assert one.returncode == 0, one.stderr
    variant = "cifar10-smoke+models=vgg11"
    assert [r["model"] for r in read_rows(results / variant / "baselines" / "baselines.csv")] == ["vgg11"]
    assert (checkpoints / variant / "vgg11_seed0.pt").exists() and not (results / "cifar10-smoke").exists()
    sidecar = json.loads((results / variant / "baselines" / "baselines.json").read_text())
    assert sidecar["profile"] == "smoke+models=vgg11" and sidecar["profile_settings"]["base"] == "smoke"

    study = run(cmd, {}, tmp_path)             # no flags: the study's three baselines
    assert study.returncode == 0, study.stderr
    rows = read_rows(results / "cifar10-smoke" / "baselines" / "baselines.csv")
    assert [r["model"] for r in rows] == ["vgg11", "vgg16", "vgg19"]
    assert all(r["dataset"] == "cifar10" and r["profile"] == "smoke" and r["epochs"] == "1" for r in rows)
    again = run(cmd + ["--model", "vgg11"], {}, tmp_path)
    assert again.returncode == 0 and f"{checkpoints / variant / 'vgg11_seed0.pt'}" in again.stdout   # its own cache
    assert read_rows(results / "cifar10-smoke" / "baselines" / "baselines.csv") == rows


def test_set_overrides_a_profile_value_into_a_variant_folder(cifar_root, tmp_path):
    cmd = [sys.executable, "-m", "common.train", "--profile", "smoke", "--dataset", "cifar10",
           "--data-dir", str(cifar_root), "--no-progress", "--variant", "two-epochs", "--model", "vgg11"]
    out = run(cmd + ["--set", "epochs=2"], {}, tmp_path)
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "results" / "cifar10-smoke+two-epochs" / "baselines"
    assert read_rows(run_dir / "baselines.csv")[0]["epochs"] == "2"
    settings = json.loads((run_dir / "baselines.json").read_text())["profile_settings"]
    assert settings["epochs"] == 2 and settings["base"] == "smoke"
    from_env = run(cmd[:-4] + ["--model", "vgg11"], {"OVERRIDES": "epochs=2"}, tmp_path)   # the same run
    assert from_env.returncode == 0 and "cifar10-smoke+epochs=2+models=vgg11" in from_env.stdout


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
    assert again.returncode == 0 and "up to date, skipped: baselines" in again.stdout
    broken = run(["./run_all.sh"], {**env, "DATASET": "cifar100", "CIFAR_DIR": str(tmp_path / "nowhere")},
                 tmp_path)
    assert broken.returncode != 0 and "cifar100: expected the pickled" in broken.stderr
    assert not (tmp_path / "results" / "cifar100-smoke" / "stages").exists()     # nothing decided, nothing run


def test_a_study_script_run_outside_the_runner_leaves_its_stage_to_run(cifar_root, tmp_path):
    """A run outside the runner leaves no completion record, so the stage runs (finding every
    model cached) and records itself."""
    common = ["--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--no-progress"]
    alone = run([sys.executable, "-m", "common.train", *common], {}, tmp_path)
    assert alone.returncode == 0, alone.stderr
    stage = run(["./run_all.sh", "baselines", "--no-report"],
                {"PROFILE": "smoke", "DATASET": "cifar10", "CIFAR_DIR": str(cifar_root)}, tmp_path)
    assert stage.returncode == 0, stage.stdout + stage.stderr
    assert "no completion record" in stage.stdout and "trained in" not in stage.stdout
    rows = read_rows(tmp_path / "results" / "cifar10-smoke" / "baselines" / "baselines.csv")
    assert [r["model"] for r in rows] == ["vgg11", "vgg16", "vgg19"]
