"""A stage's jobs through submitit (its local executor here) give the results of the local pool."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.cli import RunContext
from common.jobs import Job
from common.profiles import PROFILES
from common.results import read_rows
from distillation.study import student_jobs
from study.launch import run_command_on, run_jobs_on, slurm_executor

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("method", "seed", "top1_acc", "top5_acc", "val_top1_acc")


def students_command(cifar_root: Path) -> list[str]:
    """distillation/01_students.py on smoke, the tiny CIFAR-10 and the CPU, two methods at seed 0."""
    return [sys.executable, "distillation/01_students.py", "--methods", "independent", "kd",
            "--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root),
            "--device", "cpu", "--no-progress"]


def outputs(out: Path) -> dict:
    return {"RESULTS_DIR": str(out / "results"), "CHECKPOINT_DIR": str(out / "checkpoints")}


def cpu_context(data_dir: Path) -> RunContext:
    return RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=data_dir,
                      device=torch.device("cpu"), progress=False)


def test_students_through_submitit_match_the_local_pool(cifar_root, tmp_path, monkeypatch, capsys):
    remote = tmp_path / "remote"
    for name, value in outputs(remote).items():   # the submitted jobs inherit this environment
        monkeypatch.setenv(name, value)
    ctx = cpu_context(cifar_root)
    executor = slurm_executor(tmp_path / "submitit", cluster="local", gpus_per_job=0, time_minutes=10)
    run_jobs_on(executor, ctx, [Job("common.baselines:get_baseline", {"model_name": "vgg16"},
                                    "teacher vgg16", "vgg16_seed0")], desc="teachers")
    run_jobs_on(executor, ctx, student_jobs(["independent", "kd"], [0], "vgg16"), desc="students")
    printed = capsys.readouterr().out
    assert "[submitit] 2 students as one array" in printed and str(tmp_path / "submitit") in printed

    folder = remote / "checkpoints" / "cifar10-smoke"
    trained = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pt")}
    assert sorted(trained) == ["student_independent_none_seed0.pt", "student_kd_vgg16_seed0.pt",
                               "vgg16_seed0.pt"]
    run_command_on(executor, students_command(cifar_root), env=outputs(remote), cwd=ROOT)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.pt")} == trained, \
        "the collect step trained a model"

    local = tmp_path / "local"
    env = {**os.environ, **outputs(local)}
    done = subprocess.run(students_command(cifar_root) + ["--jobs", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    rows = [read_rows(out / "results" / "cifar10-smoke" / "distillation" / "students.csv") for out in (remote, local)]
    assert [r["method"] for r in rows[0]] == ["independent", "kd"]
    assert [{k: r[k] for k in COMPARED} for r in rows[0]] == [{k: r[k] for k in COMPARED} for r in rows[1]]


def test_a_failing_job_raises_naming_it_after_the_others_end(tmp_path):
    executor = slurm_executor(tmp_path / "submitit", cluster="local", gpus_per_job=0, time_minutes=5)
    jobs = [Job("builtins:print", {}, "a job that works"),           # print(ctx) succeeds
            Job("os:getcwd", {"x": 1}, "the failing job")]            # getcwd(ctx, x=1) raises
    with pytest.raises(RuntimeError, match=r"job the failing job failed .*TypeError: .*getcwd"):
        run_jobs_on(executor, cpu_context(tmp_path), jobs)


def test_a_failing_command_raises_with_its_output(tmp_path):
    executor = slurm_executor(tmp_path / "submitit", cluster="local", gpus_per_job=0, time_minutes=5)
    command = [sys.executable, "-c", "import sys; print('collected half'); sys.exit('no model cached')"]
    with pytest.raises(RuntimeError, match=r"(?s)command failed.*collected half.*no model cached"):
        run_command_on(executor, command, env={"RESULTS_DIR": str(tmp_path / "results")}, cwd=ROOT)
