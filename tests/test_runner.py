"""The runner (``./run_all.sh`` = ``python -m study.runner``): a stage reruns when it did not
complete or its work changed, never because of timestamps; a crash in deciding fails the run;
``KEEP_GOING=1`` runs past a failed stage and prints the status lines the device check reads."""

import argparse
import dataclasses
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common import data
from common.profiles import PROFILES
from study import records, runner, stage_process
from study.stages import STAGES, stage_named
from tests.conftest import pretend_the_data_is_there, write_damaged_cifar10

ROOT = Path(__file__).resolve().parents[1]
ENSURE_DATASET = data.ensure_dataset        # the real one (fake_stages stands it in)


@pytest.fixture
def fake_stages(isolated_outputs, monkeypatch):
    """Stages run in-process by a stand-in: each writes its declared outputs (and the report
    nothing) and logs the declared checkpoints present in the checkpoint folder as used, as
    ``common.checkpoints`` does; ``ran`` lists the scripts run, ``crash`` names a script that
    writes its first output and then fails."""
    state = {"ran": [], "crash": None, "count": 0, "commands": []}

    def run_logged(command, log, env=None, echo=True):
        script = command[1] if command[1] != "-m" else command[2].replace(".", "/") + ".py"
        state["ran"].append(script)
        state["commands"].append(command)
        state["count"] += 1
        stage = next((s for s in STAGES if s.script == script), None)
        if stage is None:
            return 0
        run = isolated_outputs / "results" / f"cifar10-{profile_of(command).name}"
        for i, output in enumerate(stage.outputs):
            if state["crash"] == script and i == 1:
                return 1
            (run / output).parent.mkdir(parents=True, exist_ok=True)
            (run / output).write_text(f"{script} {i} run {state['count']}\n")   # new content each run
        for name in stage.checkpoints:
            path = isolated_outputs / "checkpoints" / "cifar10-cpu" / f"{name}.pt"
            if path.exists() and env:
                log_use_as(env, path)
        return 0

    monkeypatch.setattr(runner, "run_logged", run_logged)
    pretend_the_data_is_there(monkeypatch)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    return state


def profile_of(command: list[str]):
    """The profile a stage's command runs under, as the stage's own parser makes it."""
    from common.flags import add_common_args
    from common.profiles import run_profile

    args, _ = add_common_args(argparse.ArgumentParser()).parse_known_args(command[2:])
    return run_profile(args, announce=False)


def log_use_as(env: dict, path: Path) -> None:
    """What ``common.checkpoints.log_use`` does in a stage process started with ``env``."""
    with open(env["STUDY_CHECKPOINT_LOG"], "a") as handle:
        handle.write(f"{path.resolve()}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\n")


def write_checkpoints(isolated_outputs: Path, *names: str, content: str = "weights") -> None:
    folder = isolated_outputs / "checkpoints" / "cifar10-cpu"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.pt").write_text(f"{name} {content}")


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


def test_an_output_that_is_not_what_its_stage_wrote_reruns_that_stage_and_its_readers(fake_stages,
                                                                                       isolated_outputs):
    """The bug: an edited (or damaged, or copied-in) sensitivity CSV was taken as the stage's own;
    only its readers reran, on the edited numbers."""
    assert run() == 0
    (isolated_outputs / "results" / "cifar10-cpu" / "pruning" / "structured_sensitivity.csv").write_text("new\n")
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["pruning/03_structured_sensitivity.py", "pruning/04_structured_final.py",
                                  "report/build.py"]


def test_a_retrained_checkpoint_reruns_the_stages_that_used_it(fake_stages, isolated_outputs):
    """Item 4 of the incremental-run issue: records held checkpoint hashes that decided nothing,
    so after VGG-16 was retrained the distillation results still came from the old teacher."""
    write_checkpoints(isolated_outputs, "vgg11_seed0", "vgg16_seed0", "vgg19_seed0")
    assert run() == 0
    write_checkpoints(isolated_outputs, "vgg16_seed0", content="retrained")
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == [
        "quantization/03_scaling_law.py",     # the scaling law quantizes VGG-16 too
        "distillation/01_students.py", "distillation/02_alignment.py", "distillation/03_gradcam.py",
        "distillation/04_color_invariance.py", "distillation/05_teacher_size.py", "combined/01_pipelines.py",
        "combined/02_pareto.py",      # reads students.csv and pipelines.csv, which were rewritten
        "report/build.py"]
    record = json.loads(records.record_path(isolated_outputs / "results" / "cifar10-cpu",
                                            stage_named("distillation/02_alignment")).read_text())
    assert list(record["checkpoints"]) == ["vgg16_seed0.pt"]
    assert record["machine"]["training_dtype"] in ("bf16", "fp32") and "cpu_capability" in record["machine"]


def test_force_reruns_the_named_stages_and_not_their_up_to_date_inputs(fake_stages):
    """The bug: FORCE=1 ./run_all.sh quantization/01_ptq reran the baselines too (every stage
    select() adds as an input), where the README says it reruns the named stages."""
    assert run() == 0
    fake_stages["ran"].clear()
    assert run("quantization/01_ptq", force=True) == 0
    assert fake_stages["ran"] == ["quantization/01_ptq.py", "report/build.py"]
    fake_stages["ran"].clear()
    assert run("pruning", force=True) == 0
    assert fake_stages["ran"] == [s.script for s in STAGES if s.task == "pruning"] + ["report/build.py"]


def test_a_missing_checkpoint_decides_nothing(fake_stages, isolated_outputs):
    """Checkpoints are never committed: a fresh clone of recorded results has none, and reruns nothing."""
    write_checkpoints(isolated_outputs, "vgg11_seed0", "vgg16_seed0", "vgg19_seed0")
    assert run() == 0
    for path in (isolated_outputs / "checkpoints").rglob("*.pt"):
        path.unlink()
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["report/build.py"]


def test_an_edited_module_reruns_exactly_the_stages_that_import_it(fake_stages, monkeypatch):
    """Item 6: code was not tracked; editing quantization/pt2e.py answered 'up to date'. Now the
    stages whose script imports it, directly or not, rerun (and those reading what they rewrote)."""
    import common.code

    assert run() == 0
    real = common.code.normalised_sha256
    monkeypatch.setattr(common.code, "normalised_sha256",
                        lambda path: "edited" if path.name == "pt2e.py" else real(path))
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["quantization/01_ptq.py", "quantization/02_qat.py",
                                  "quantization/04_mixed_precision.py", "combined/01_pipelines.py",
                                  "combined/02_pareto.py", "report/build.py"]


def test_a_named_stage_first_reruns_the_stale_stages_it_reads_from(fake_stages, monkeypatch):
    """Item 8: after a profile edit, naming three stages reran those three only, on the models and
    CSVs of the old profile, because their prerequisites' outputs existed. Now every stage they
    read from is considered first, and rerun when stale, as make would."""
    assert run() == 0
    monkeypatch.setitem(PROFILES, "cpu", dataclasses.replace(PROFILES["cpu"], epochs=16))
    fake_stages["ran"].clear()
    assert run("distillation/04_color_invariance", "quantization/01_ptq", "pruning/02_unstructured_final") == 0
    assert fake_stages["ran"] == [
        "common/train.py", "pruning/01_unstructured_sensitivity.py", "pruning/02_unstructured_final.py",
        "quantization/01_ptq.py", "distillation/01_students.py", "distillation/04_color_invariance.py",
        "report/build.py"]


def test_a_crash_while_deciding_fails_the_run(fake_stages, isolated_outputs, monkeypatch):
    assert run() == 0

    def broken(*args):
        raise RuntimeError("a bug in deciding")

    monkeypatch.setattr(records, "expected", broken)
    with pytest.raises(RuntimeError, match="a bug in deciding"):
        run()


def test_data_gone_offline_is_one_line_and_keeps_every_completion_record(fake_stages, isolated_outputs,
                                                                          cifar_root, tmp_path, monkeypatch):
    """The bug: data folder emptied, no network: the runner took the missing files for 'its data
    changed', deleted the first stage's record, then the stage failed. Now the data is fetched once
    before deciding, and its failure is one error with nothing run or forgotten."""
    monkeypatch.setattr(data, "ensure_dataset", ENSURE_DATASET)
    present = tmp_path / "data"
    shutil.copytree(cifar_root / "cifar-10-batches-py", present / "cifar-10-batches-py")
    argv = ["--profile", "cpu", "--dataset", "cifar10", "--data-dir", str(present), "--no-plan"]
    assert runner.main(argv) == 0
    stages = isolated_outputs / "results" / "cifar10-cpu" / "stages"
    kept = {p: p.read_bytes() for p in stages.rglob("*.json")}
    assert len(kept) == len(STAGES)
    shutil.rmtree(present / "cifar-10-batches-py")

    def offline(name, root):
        raise OSError("Name or service not known")

    monkeypatch.setattr(data, "_download", offline)
    fake_stages["ran"].clear()
    with pytest.raises(data.DatasetNotFoundError, match="expected the pickled"):
        runner.main(argv)
    assert fake_stages["ran"] == []
    assert {p: p.read_bytes() for p in stages.rglob("*.json")} == kept


def test_a_damaged_completion_record_reruns_its_stage(fake_stages, isolated_outputs, capsys):
    assert run() == 0
    record = records.record_path(isolated_outputs / "results" / "cifar10-cpu", stage_named("pruning/07_gradcam"))
    record.write_text("{ not json")
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["pruning/07_gradcam.py", "report/build.py"]
    assert "pruning/07_gradcam (its completion record stages/pruning/07_gradcam.json is damaged)" in capsys.readouterr().out


def test_a_target_runs_its_task_and_first_what_it_reads_when_missing(fake_stages):
    assert run("distillation/02_alignment") == 0
    assert fake_stages["ran"] == ["common/train.py", "distillation/01_students.py", "distillation/02_alignment.py"]
    fake_stages["ran"].clear()
    assert run("distillation") == 0
    assert fake_stages["ran"] == ["distillation/03_gradcam.py", "distillation/04_color_invariance.py",
                                  "distillation/05_teacher_size.py"]


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
    """Through run_all.sh with a real interpreter: a smoke run on a dataset whose files are damaged
    fails every stage that loads it; each one gets its status line and its log."""
    from study.device_check import last_line
    from study.status import parse_status_lines

    env = {**os.environ, "PYTHON": sys.executable, "PROFILE": "smoke", "DATASET": "cifar10", "KEEP_GOING": "1",
           "CIFAR_DIR": str(write_damaged_cifar10(tmp_path / "data")), "LOG_DIR": str(tmp_path / "logs"),
           "RESULTS_DIR": str(tmp_path / "r"), "CHECKPOINT_DIR": str(tmp_path / "c")}
    out = subprocess.run(["bash", str(ROOT / "run_all.sh"), "pruning/05_weight_histograms", "--no-report"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    rows = parse_status_lines(out.stdout)
    assert [r["stage"] for r in rows] == ["baselines", "pruning/01_unstructured_sensitivity",
                                          "pruning/02_unstructured_final", "pruning/03_structured_sensitivity",
                                          "pruning/04_structured_final", "pruning/05_weight_histograms"]
    assert all(r["status"] == "failed" for r in rows)
    assert last_line(tmp_path / "logs" / "baselines.log").startswith("error: ")
    assert "data_batch_1 is damaged" in last_line(tmp_path / "logs" / "baselines.log")


def test_device_check_runs_every_stage_with_its_own_interpreter(tmp_path, monkeypatch):
    """The bug: ``venv/bin/python -m study.device_check`` without an activated venv ran
    run_all.sh's stages with the first ``python`` on PATH (no torch there): 0 stages ok."""
    import study.device_check as device_check
    (tmp_path / "run_all.sh").write_text(
        'PYTHON=${PYTHON:-$(command -v python || command -v python3)}\n'   # run_all.sh's own choice
        'if "$PYTHON" -c "import torch" 2>/dev/null; then status=ok; else status=failed; fi\n'
        'echo "[run_all] 1/1 baselines (new): $status in 0 s"\n')
    monkeypatch.setattr(device_check, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")     # a python without torch, or none, comes first
    monkeypatch.delenv("PYTHON", raising=False)
    rows = device_check.run_stages("cpu", "cifar10", tmp_path, tmp_path / "scratch")
    assert [(r["stage"], r["status"]) for r in rows] == [("baselines", "ok")]


def test_a_record_without_code_hashes_reruns_its_stage(fake_stages, isolated_outputs):
    """The committed records adopted before code and checkpoints were recorded certify nothing:
    their stages rerun (saying why) until the results are regenerated."""
    assert run() == 0
    path = records.record_path(isolated_outputs / "results" / "cifar10-cpu", stage_named("pruning/07_gradcam"))
    record = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in record.items() if k not in ("code", "checkpoints")}))
    fake_stages["ran"].clear()
    assert run() == 0
    assert fake_stages["ran"] == ["pruning/07_gradcam.py", "report/build.py"]


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
    assert projected < out.index("[run_all] 1/2 baselines")
    assert float(out[projected:].split()[2]) > 0 and "for 2 stage(s)" in out[projected:].splitlines()[0]


STOPS_SLOWLY = """
import pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
def stop(signum, frame):
    time.sleep(1.5)                      # a pool giving its workers their grace, files being removed
    (folder / "stopped").write_text("cleanly")
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
(folder / "ready").write_text("")
time.sleep(120)
"""


def test_ctrl_c_lets_the_running_stage_stop_cleanly(tmp_path):
    """Item 7: under run_all, Ctrl-C killed the stage 0.25 s later (subprocess.run's grace), so its
    pool never gave its workers their 10 s and half-written files stayed. Now the stage gets the
    interrupt once and its grace period runs before run_all stops."""
    import signal
    import threading
    import time

    script = tmp_path / "stage.py"
    script.write_text(STOPS_SLOWLY)

    def interrupt_when_ready():
        while not (tmp_path / "ready").exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal, even under a
    threading.Thread(target=interrupt_when_ready, daemon=True).start()     # background pytest
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run_logged([sys.executable, str(script), str(tmp_path)], tmp_path / "logs" / "stage.log")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (tmp_path / "stopped").read_text() == "cleanly"
    assert time.monotonic() - start < stage_process.STOP_GRACE_SECONDS


def test_set_runs_the_study_as_a_variant_beside_it(fake_stages, isolated_outputs):
    assert run() == 0
    study = {p.relative_to(isolated_outputs): p.read_bytes() for p in (isolated_outputs / "results").rglob("*")
             if p.is_file()}
    fake_stages["commands"].clear()
    assert run("--set", "student_epochs=2", "lr=0.05") == 0
    variant = isolated_outputs / "results" / "cifar10-cpu+lr=0.05+student_epochs=2"
    assert (variant / "distillation" / "students.csv").exists()
    assert all(c[c.index("--set"):c.index("--set") + 3] == ["--set", "student_epochs=2", "lr=0.05"]
               for c in fake_stages["commands"])
    record = json.loads((variant / "stages" / "baselines" / "baselines.json").read_text())
    assert record["profile"] == "cpu+lr=0.05+student_epochs=2" and record["recipe"]["lr"] == 0.05
    assert {p.relative_to(isolated_outputs): p.read_bytes() for p in (isolated_outputs / "results").rglob("*")
            if p.is_file() and "cifar10-cpu/" in str(p)} == study        # the study's files untouched


def test_every_stage_runs_its_script_with_no_flags_of_its_own():
    """The bug: run_all passed distillation/01 --seeds 0 1 2, which the script alone did not
    default to, so the script alone trained one seed where the study trains three."""
    from distillation.names import STUDY_SEEDS, student_seeds
    from study.stages import load_script

    for stage in STAGES:
        assert stage.command("py")[1:] in ([stage.script], ["-m", stage.module]), stage.name
    alone = load_script("distillation/01_students.py").build_parser().parse_args(["--profile", "cpu"])
    assert student_seeds(alone.seeds, alone.seed, "cpu") == list(STUDY_SEEDS) == [0, 1, 2]
    assert student_seeds(alone.seeds, alone.seed, "smoke") == [0]
    assert load_script("quantization/03_scaling_law.py").build_parser().parse_args([]).with_pruned is True
    assert alone.work_flags == {}
