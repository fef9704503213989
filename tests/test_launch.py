"""A stage's jobs through submitit (its local executor here) give the results of the local pool."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import jobs_helpers

from common.cli import RunContext
from common.jobs import Job
from common.profiles import PROFILES
from common.results import read_rows
from distillation.study import student_jobs
from study import launch, runner
from study.launch import job_executor, run_command_on, run_jobs_on

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("method", "seed", "top1_acc", "top5_acc", "val_top1_acc")


def students_command(cifar_root: Path) -> list[str]:
    """distillation/01_students.py on smoke, the tiny CIFAR-10 and the CPU, two methods at seed 0."""
    return [sys.executable, "distillation/01_students.py", "--methods", "independent", "kd",
            "--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root),
            "--device", "cpu", "--no-progress", "--variant", "two-methods"]


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
    executor = job_executor("submitit-local", tmp_path / "submitit", gpus_per_job=0, time_minutes=10)
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
    assert not list((remote / "checkpoints" / "cifar10-smoke+two-methods").glob("*.pt")), \
        "the variant retrained what the study's checkpoints hold under the same key"

    local = tmp_path / "local"
    env = {**os.environ, **outputs(local)}
    done = subprocess.run(students_command(cifar_root) + ["--jobs", "1"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    rows = [read_rows(out / "results" / "cifar10-smoke+two-methods" / "distillation" / "students.csv")
            for out in (remote, local)]
    assert [r["method"] for r in rows[0]] == ["independent", "kd"]
    assert [{k: r[k] for k in COMPARED} for r in rows[0]] == [{k: r[k] for k in COMPARED} for r in rows[1]]


def test_a_failing_job_raises_naming_it_after_the_others_end(tmp_path):
    executor = job_executor("submitit-local", tmp_path / "submitit", gpus_per_job=0, time_minutes=5)
    jobs = [Job("builtins:print", {}, "a job that works"),           # print(ctx) succeeds
            Job("os:getcwd", {"x": 1}, "the failing job")]            # getcwd(ctx, x=1) raises
    with pytest.raises(RuntimeError, match=r"job the failing job failed .*TypeError: .*getcwd"):
        run_jobs_on(executor, cpu_context(tmp_path), jobs)


def test_a_failing_command_raises_with_its_output(tmp_path):
    executor = job_executor("submitit-local", tmp_path / "submitit", gpus_per_job=0, time_minutes=5)
    command = [sys.executable, "-c", "import sys; print('collected half'); sys.exit('no model cached')"]
    with pytest.raises(RuntimeError, match=r"(?s)command failed.*collected half.*no model cached"):
        run_command_on(executor, command, env={"RESULTS_DIR": str(tmp_path / "results")}, cwd=ROOT)


def test_a_slurm_run_without_slurm_is_one_line_before_anything_is_written(tmp_path, cifar_root):
    """The bug: submitit's auto executor quietly ran the jobs here, they failed, and its logs were
    left in the results."""
    (tmp_path / "bin").mkdir()   # a PATH without sbatch
    env = {**os.environ, **outputs(tmp_path), "PATH": str(tmp_path / "bin")}
    done = subprocess.run([sys.executable, "-m", "study.runner", "--launcher", "slurm", "--profile", "smoke",
                           "--dataset", "cifar10", "--data-dir", str(cifar_root), "--job-logs", str(tmp_path / "jobs"),
                           "baselines"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and "Traceback" not in done.stderr and len(errors) == 1, done.stderr
    assert "--launcher slurm needs SLURM" in errors[0] and "no sbatch" in errors[0]
    assert not any((tmp_path / name).exists() for name in ("results", "checkpoints", "jobs"))


FAKE_DOWNLOADER = "import common.data, jobs_helpers\ncommon.data._download = jobs_helpers.download_and_count\n"


def test_the_jobs_of_an_array_never_download_the_data(cifar_root, tmp_path, isolated_outputs, monkeypatch):
    """The submitting run fetches the data once, before its first array; the baselines' three
    concurrent jobs (and the job that collects them) never call the downloader. The bug: each
    job of a first run could start its own download into the same folder."""
    fake = tmp_path / "fake_site"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(FAKE_DOWNLOADER)   # the downloader of every job process
    calls = tmp_path / "downloads.log"
    monkeypatch.setenv("FAKE_DOWNLOAD_LOG", str(calls))
    monkeypatch.setenv("FAKE_CIFAR_SOURCE", str(cifar_root))
    monkeypatch.setenv("PYTHONPATH", f"{fake}:{ROOT / 'tests'}:{ROOT}")
    monkeypatch.setattr("common.data._download", jobs_helpers.download_and_count)   # ... and of this process
    data = tmp_path / "data"
    status = runner.main(["--launcher", "submitit-local", "--profile", "smoke", "--dataset", "cifar10",
                          "--data-dir", str(data), "--job-logs", str(tmp_path / "jobs"), "--gpus-per-job", "0",
                          "--device", "cpu", "--no-report", "baselines"])
    assert status == 0
    assert calls.read_text().split() == [str(os.getpid())], "a job downloaded the data"
    assert len(list((tmp_path / "jobs").glob("*_log.out"))) >= 4   # three trainings and the collect job
    assert not (isolated_outputs / "results" / "cifar10-smoke" / "submitit").exists()


def test_a_jobs_thread_count_follows_its_allocation(tmp_path, monkeypatch):
    allocated = torch.get_num_threads() + 1    # not this process's count
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", str(allocated))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "tests"))
    executor = job_executor("submitit-local", tmp_path / "jobs", gpus_per_job=0, time_minutes=5)
    out = tmp_path / "threads.txt"
    run_jobs_on(executor, cpu_context(tmp_path), [Job("jobs_helpers:record_threads", {"path": str(out)})])
    assert out.read_text() == str(allocated)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert launch.allocated_cpus() == len(os.sched_getaffinity(0))


def test_the_projection_of_a_slurm_run_never_benchmarks_this_machine(isolated_outputs, tmp_path, monkeypatch, capsys):
    from study.records import RunFolders

    def benchmark(*args, **kwargs):
        raise AssertionError("benchmarked this machine for a run on the cluster")

    monkeypatch.setattr("study.throughput.measure_throughput", benchmark)
    profile = PROFILES["cpu"]
    settings = runner.current_settings(profile, "cifar10")
    stages = runner.select(["pruning/01_unstructured_sensitivity"], settings)
    where = RunFolders(isolated_outputs / "results" / "cifar10-cpu", isolated_outputs / "checkpoints" / "cifar10-cpu",
                       "cifar10", tmp_path)
    args = runner.build_parser().parse_args(["--launcher", "slurm", "--profile", "cpu", "--dataset", "cifar10"])
    runner.projection(runner.stages_to_run(stages, args, profile, settings, where), args, profile)
    assert "no time projection for jobs on other machines: give --throughput" in capsys.readouterr().out

    csv = tmp_path / "throughput.csv"   # a device check's figures from the jobs' device
    csv.write_text("model,width,batch_size,train_images_per_second,infer_images_per_second\n"
                   + "".join(f"{m},{profile.width},{profile.batch_size},{r},{4 * r}\n"
                             for m, r in (("vgg11", 9000), ("vgg16", 5000), ("vgg19", 4000))))
    args = runner.build_parser().parse_args(["--launcher", "slurm", "--profile", "cpu", "--dataset", "cifar10",
                                             "--throughput", str(csv)])
    seconds = runner.projection(runner.stages_to_run(stages, args, profile, settings, where), args, profile)
    assert sorted(seconds) == [s.name for s in stages] and all(v > 0 for v in seconds.values())
    line = capsys.readouterr().out.strip()
    assert line.startswith("[run_all] projected ") and "for 2 stage(s)" in line and str(csv) in line
