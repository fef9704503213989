"""Concurrent trainings: results do not depend on the number of worker processes."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.cli import RunContext
from common.jobs import Job, default_jobs, run_jobs, worker_devices
from common.profiles import PROFILES
from common.results import read_rows

ROOT = Path(__file__).resolve().parents[1]


def students_run(cifar_root, out: Path, jobs: int) -> subprocess.CompletedProcess:
    """distillation/01_students.py on smoke, two methods at two seeds, with ``jobs`` workers, on
    the default thread policy (the thread count torch picks for the machine, as a user runs it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(RESULTS_DIR=str(out / "results"), CHECKPOINT_DIR=str(out / "checkpoints"))
    cmd = [sys.executable, "distillation/01_students.py", "--profile", "smoke", "--dataset", "cifar10",
           "--data-dir", str(cifar_root), "--no-progress", "--methods", "independent", "kd",
           "--seeds", "0", "1", "--jobs", str(jobs), "--variant", "two-methods"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_one_and_two_workers_write_identical_students(cifar_root, tmp_path):
    one = students_run(cifar_root, tmp_path / "one", 1)
    assert one.returncode == 0, one.stderr[-2000:]
    two = students_run(cifar_root, tmp_path / "two", 2)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "[jobs] 4 students on 2 workers" in two.stdout
    names = sorted(p.name for p in (tmp_path / "one/checkpoints/cifar10-smoke+two-methods").glob("student_*.pt"))
    assert names == ["student_independent_none_seed0.pt", "student_independent_none_seed1.pt",
                     "student_kd_vgg16_seed0.pt", "student_kd_vgg16_seed1.pt"]
    for name in names:
        a = torch.load(tmp_path / "one/checkpoints/cifar10-smoke+two-methods" / name, weights_only=False)
        b = torch.load(tmp_path / "two/checkpoints/cifar10-smoke+two-methods" / name, weights_only=False)
        for key, tensor in a["state_dict"].items():
            assert torch.equal(tensor, b["state_dict"][key]), f"{name}: {key}"
    rows = [read_rows(tmp_path / run / "results/cifar10-smoke+two-methods/distillation/students.csv") for run in ("one", "two")]
    drop = ("train_seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows[0]] == \
           [{k: v for k, v in r.items() if k not in drop} for r in rows[1]]


def test_workers_are_dealt_over_every_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [str(d) for d in worker_devices("cuda", 5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert [str(d) for d in worker_devices("cuda:1", 2)] == ["cuda:1", "cuda:1"]
    assert [str(d) for d in worker_devices("cpu", 2)] == ["cpu", "cpu"]
    assert default_jobs("cuda") == 4 and default_jobs("cuda:1") == 2 and default_jobs("cpu") == 1


def test_a_failing_job_stops_the_pool_at_once_and_leaves_no_partial_file(tmp_path):
    """The bug: the pool raised only once the other running jobs had ended (a whole training on
    the full profile); now the others are terminated and their unfinished files removed."""
    ctx = RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=tmp_path,
                     device=torch.device("cpu"), progress=False, jobs=2)
    target = tmp_path / "out" / "model.pt"
    jobs = [Job("jobs_helpers:write_slowly", {"path": str(target), "seconds": 60.0}, "slow"),
            Job("jobs_helpers:fail_soon", {"seconds": 1.0}, "the failing job")]
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="job the failing job failed: this job fails on purpose"):
        run_jobs(ctx, jobs)
    assert time.monotonic() - start < 20, "the pool waited for the running job"
    assert not target.exists() and not list(target.parent.glob("*.tmp"))


def test_jobs_writing_one_checkpoint_run_once(tmp_path):
    """The bug: the student 'dkd' at seed 0 and the DKD grid's candidate 'dkd' both train
    student_dkd_vgg16_seed0; with two workers both ran, the last writer winning."""
    from distillation.study import dkd_candidate_jobs, student_jobs

    jobs = student_jobs(["independent", "dkd"], [0, 1], "vgg16") + dkd_candidate_jobs("vgg16", 0)
    keys = [j.key for j in jobs]
    assert keys.count("student_dkd_vgg16_seed0") == 2 and "student_independent_none_seed1" in keys
    log = tmp_path / "runs.txt"
    ctx = RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=tmp_path,
                     device=torch.device("cpu"), progress=False, jobs=2)
    twice = [Job("jobs_helpers:append_line", {"path": str(log), "text": label}, label, "student_dkd_vgg16_seed0")
             for label in ("student dkd seed 0", "candidate dkd")]
    run_jobs(ctx, twice + [Job("jobs_helpers:append_line", {"path": str(log), "text": "other"}, "other", "b")])
    assert sorted(log.read_text().split("\n")[:-1]) == ["other", "student dkd seed 0"]


def test_a_failing_job_is_named(tmp_path):
    ctx = RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=tmp_path,
                     device=torch.device("cpu"), progress=False, jobs=2)
    jobs = [Job("common.baselines:get_baseline", {"model_name": "vgg99"}, "the vgg99 baseline")] * 2
    with pytest.raises(RuntimeError, match="job the vgg99 baseline failed"):
        run_jobs(ctx, jobs)
