"""The runner (``./run_all.sh`` = ``python -m study.runner``): a stage reruns when it did not
complete or its work changed, never because of timestamps; a crash in deciding fails the run;
``KEEP_GOING=1`` runs past a failed stage and prints the status lines the device check reads."""

import dataclasses
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from common.profiles import PROFILES
from study import records, runner
from study.stages import STAGES, stage_named

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_stages(isolated_outputs, monkeypatch):
    """Stages run in-process by a stand-in: each writes its declared outputs (and the report
    nothing); ``ran`` lists the scripts run, ``crash`` names a script that writes its first
    output and then fails."""
    state = {"ran": [], "crash": None, "count": 0}

    def run_logged(command, log):
        script = command[1] if command[1] != "-m" else command[2].replace(".", "/") + ".py"
        state["ran"].append(script)
        state["count"] += 1
        stage = next((s for s in STAGES if s.script == script), None)
        if stage is None:
            return 0
        run = isolated_outputs / "results" / "cifar10-cpu"
        for i, output in enumerate(stage.outputs):
            if state["crash"] == script and i == 1:
                return 1
            (run / output).parent.mkdir(parents=True, exist_ok=True)
            (run / output).write_text(f"{script} {i} run {state['count']}\n")   # new content each run
        return 0

    monkeypatch.setattr(runner, "run_logged", run_logged)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    return state


def run(*targets, force=False):
    return runner.main(["--profile", "cpu", "--dataset", "cifar10", "--data-dir", "nowhere", "--keep-going", "--no-plan",
                        *(["--force"] if force else []), *targets])


def test_a_complete_run_is_not_repeated_whatever_the_timestamps(fake_stages, isolated_outputs):
    """The bug: on a fresh clone the checkout order made an input 0.2 ms 'newer' than an output
    and run_all retrained VGG-11. Now every file's time is shuffled and nothing reruns."""
    assert run() == 0
    assert fake_stages["ran"] == [s.script for s in STAGES] + ["report/build.py"]
    files = [p for p in (isolated_outputs / "results").rglob("*") if p.is_file()]
    random.Random(0).shuffle(files)
    for i, path in enumerate(files):
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["report/build.py"]


def test_a_crash_after_the_first_output_reruns_the_stage(fake_stages):
    fake_stages["crash"] = "quantization/02_qat.py"       # writes qat.csv, then fails
    assert run() == 1
    fake_stages["crash"] = None
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["quantization/02_qat.py", "report/build.py"]


def test_a_changed_read_file_reruns_the_stages_that_read_it(fake_stages, isolated_outputs):
    assert run() == 0
    (isolated_outputs / "results" / "cifar10-cpu" / "pruning" / "structured_sensitivity.csv").write_text("new\n")
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["pruning/04_structured_final.py", "report/build.py"]


def test_a_crash_while_deciding_fails_the_run(fake_stages, isolated_outputs):
    assert run() == 0
    record = records.record_path(isolated_outputs / "results" / "cifar10-cpu", stage_named("pruning/07_gradcam"))
    record.write_text("{ not json")
    with pytest.raises(json.JSONDecodeError):
        run()


def test_a_target_runs_its_task_and_first_what_it_reads_when_missing(fake_stages):
    assert run("distillation/02_alignment") == 0
    assert fake_stages["ran"] == ["common/train.py", "distillation/01_students.py", "distillation/02_alignment.py",
                                  "report/build.py"]
    fake_stages["ran"].clear()
    assert run("distillation") == 0
    assert fake_stages["ran"] == ["distillation/03_gradcam.py", "distillation/04_color_invariance.py",
                                  "distillation/05_teacher_size.py", "report/build.py"]


def test_a_changed_profile_setting_reruns_exactly_the_stages_whose_work_it_changes(fake_stages, monkeypatch):
    assert run() == 0
    monkeypatch.setitem(PROFILES, "cpu", dataclasses.replace(PROFILES["cpu"], student_epochs=11))
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == [
        "distillation/01_students.py", "distillation/02_alignment.py", "distillation/03_gradcam.py",
        "distillation/04_color_invariance.py", "distillation/05_teacher_size.py", "combined/01_pipelines.py",
        "combined/02_pareto.py",      # reads students.csv and pipelines.csv, which were rewritten
        "report/build.py"]


def test_keep_going_runs_past_a_failed_stage_and_prints_every_status_line(tmp_path):
    """Through run_all.sh with a real interpreter: a smoke run on a dataset that is absent fails
    every stage that needs data; each one gets its status line and its log."""
    from study.device_check import last_line, parse_stage_lines

    env = {**os.environ, "PYTHON": sys.executable, "PROFILE": "smoke", "DATASET": "cifar10", "KEEP_GOING": "1",
           "CIFAR_DIR": str(tmp_path / "nowhere"), "LOG_DIR": str(tmp_path / "logs"),
           "RESULTS_DIR": str(tmp_path / "r"), "CHECKPOINT_DIR": str(tmp_path / "c")}
    out = subprocess.run(["bash", str(ROOT / "run_all.sh"), "pruning/05_weight_histograms", "--no-report"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    rows = parse_stage_lines(out.stdout)
    assert [r["stage"] for r in rows] == ["baselines", "pruning/01_unstructured_sensitivity",
                                          "pruning/02_unstructured_final", "pruning/03_structured_sensitivity",
                                          "pruning/04_structured_final", "pruning/05_weight_histograms"]
    assert all(r["status"] == "failed" for r in rows)
    assert last_line(tmp_path / "logs" / "baselines.log").startswith("error: cifar10: expected")


def test_device_check_runs_every_stage_with_its_own_interpreter(tmp_path, monkeypatch):
    """The bug: ``venv/bin/python -m study.device_check`` without an activated venv ran
    run_all.sh's stages with the first ``python`` on PATH (no torch there): 0 stages ok."""
    import study.device_check as device_check
    (tmp_path / "run_all.sh").write_text(
        'PYTHON=${PYTHON:-$(command -v python || command -v python3)}\n'   # run_all.sh's own choice
        'if "$PYTHON" -c "import torch" 2>/dev/null; then status=ok; else status=failed; fi\n'
        'echo "[run_all] stage baselines $status 0"\n')
    monkeypatch.setattr(device_check, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")     # a python without torch, or none, comes first
    monkeypatch.delenv("PYTHON", raising=False)
    rows = device_check.run_stages("cpu", "cifar10", tmp_path, tmp_path / "scratch")
    assert [(r["stage"], r["status"]) for r in rows] == [("baselines", "ok")]


def test_adopting_existing_results_records_them_and_then_nothing_reruns(fake_stages, isolated_outputs):
    run_dir = isolated_outputs / "results" / "cifar10-cpu"
    for stage in STAGES[:3]:             # results from before records existed, for three stages
        for output in stage.outputs:
            (run_dir / output).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / output).write_text("old\n")
    assert runner.main(["--profile", "cpu", "--dataset", "cifar10", "--adopt", *(s.name for s in STAGES[:3])]) == 0
    assert fake_stages["ran"] == []
    record = json.loads(records.record_path(run_dir, STAGES[0]).read_text())
    assert record["note"].startswith("adopted") and record["checkpoints"] == {}
    assert run(*(s.name for s in STAGES[:3])) == 0
    assert fake_stages["ran"] == ["report/build.py"]


def test_a_cpu_run_prints_its_projected_minutes_before_the_first_stage(fake_stages, isolated_outputs, monkeypatch,
                                                                      capsys, tmp_path):
    import study.plan as plan
    from study.throughput import read_throughput_csv

    csv = tmp_path / "throughput.csv"
    csv.write_text("model,width,batch_size,teacher,variant,train_images_per_second,infer_images_per_second\n"
                   + "".join(f"{m},0.5,128,{t},{v},{r},{4 * r}\n" for m, t, v, r in (
                       ("vgg11", "", "", 1000), ("vgg16", "", "", 500), ("vgg19", "", "", 400),
                       ("vgg11", "vgg16", "", 600), ("vgg11", "", "fake-quant", 300), ("vgg11", "", "pt2e-qat", 100))))
    monkeypatch.setattr(plan, "resolve_throughput", lambda args, profile, work: read_throughput_csv(csv, 0.5, 128))
    assert runner.main(["--profile", "cpu", "--dataset", "cifar10", "pruning/01_unstructured_sensitivity"]) == 0
    out = capsys.readouterr().out
    projected = out.index("[run_all] projected ")
    assert projected < out.index("=== baselines ===")
    assert float(out[projected:].split()[2]) > 0 and "for 2 stage(s)" in out[projected:].splitlines()[0]
