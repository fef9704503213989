"""A new user's first contact (issue 27): a task alone ends well, the first line comes at once
and the status lines say how far the run is, the output is quiet, and every bad input is one
line that writes nothing."""

import os
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from study import runner
from study.stages import STAGES
from tests.conftest import pretend_the_data_is_there, write_damaged_cifar10

ROOT = Path(__file__).resolve().parents[1]


def _fake_run_logged(isolated_outputs: Path, state: dict):
    """``runner.run_logged``'s stand-in: a stage writes its declared outputs; the report fails when
    a task's results are missing, as the real build does."""
    def run_logged(command, log, env=None, echo=True):
        script = command[1] if command[1] != "-m" else command[2].replace(".", "/") + ".py"
        state["ran"].append(script)
        run = isolated_outputs / "results" / "cifar10-cpu"
        if script == "report/build.py":
            return 1 if any(s.missing_outputs(run) for s in STAGES) else 0
        stage = next(s for s in STAGES if s.script == script)
        for output in stage.outputs:
            (run / output).parent.mkdir(parents=True, exist_ok=True)
            (run / output).write_text(f"{script} {len(state['ran'])}\n")
        return 0
    return run_logged


@pytest.fixture
def fake(isolated_outputs, monkeypatch):
    state = {"ran": []}
    monkeypatch.setattr(runner, "run_logged", _fake_run_logged(isolated_outputs, state))
    pretend_the_data_is_there(monkeypatch)
    return state


def run(*extra):
    return runner.main(["--profile", "cpu", "--dataset", "cifar10", "--data-dir", "nowhere", "--no-plan", *extra])


# ----------------------------------------------------------------------------- 1. a task alone


def test_one_task_alone_ends_with_exit_0_and_one_line_for_the_report(fake, capsys):
    """The bug: ``./run_all.sh distillation`` ran its stages, then failed at the report (other
    tasks' results missing), exit 1. Now the report is skipped in one line naming what is missing."""
    assert run("distillation") == 0
    out = capsys.readouterr().out
    assert "report/build.py" not in fake["ran"]
    skipped = [line for line in out.splitlines() if "report skipped" in line]
    assert len(skipped) == 1 and "pruning" in skipped[0] and "quantization" in skipped[0]
    assert run() == 0 and fake["ran"][-1] == "report/build.py"     # every task's results: it is built


# ----------------------------------------------------------------------------- 2. start-up and status lines


def test_the_first_line_comes_before_the_study_is_loaded(tmp_path):
    """The bug: nothing was printed until every stage's work was computed (torch, torchao and the
    stage scripts imported: 15 s on a busy machine). Now the first line comes right after the
    command line is read, before torch is imported."""
    probe = ("import sys\nfrom study import runner\n"
             "write, first = sys.stdout.write, []\n"
             "def watched(text):\n    first.append(first[0] if first else 'torch' in sys.modules)\n"
             "    return write(text)\n"
             "sys.stdout.write = watched\n"
             "def stop(*a):\n    print('torch imported before the first line:', first[0], flush=True)\n"
             "    sys.exit(0)\n"
             "runner.current_settings = stop\n"
             "runner.main(['--profile', 'smoke', '--dataset', 'cifar10', '--data-dir', 'nowhere', 'distillation'])\n")
    env = {**os.environ, "RESULTS_DIR": str(tmp_path / "r"), "CHECKPOINT_DIR": str(tmp_path / "c"),
           "LOG_DIR": str(tmp_path / "l")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("[run_all] profile=smoke dataset=cifar10"), out.stdout + out.stderr
    assert "torch imported before the first line: False" in lines


def test_one_task_computes_no_other_tasks_work(fake, monkeypatch):
    """The bug: ``./run_all.sh distillation`` computed the work of every stage, the mixed-precision
    configurations included (torchao imported, seconds). Now only the stages it runs, and the
    ones whose trainings make the checkpoints they read, are looked at."""
    import dataclasses

    import study.stages as stages

    looked_at = []

    def watched(stage):
        def work(s, settings):
            looked_at.append(s.name)
            return stage.work(s, settings)
        return dataclasses.replace(stage, work=work)

    monkeypatch.setattr(stages, "STAGES", [watched(s) for s in stages.STAGES])
    assert run("distillation") == 0
    assert "distillation/01_students" in looked_at
    assert not any(name.startswith(("quantization/", "combined/")) for name in looked_at), sorted(set(looked_at))


STATUS = re.compile(r"^\[run_all\] (\d+)/21 (\S+) \((.+)\): ok in (\d+) s(, about \d+ (s|min) left)?$")


def test_status_lines_say_how_far_and_skipped_stages_share_one_line(fake, capsys, monkeypatch):
    """The bug: ``stage baselines ok 57`` (no unit, no k/N, no time left); each skipped stage two
    lines. Now one line per stage that runs, ``k/N`` and seconds, the time left from the cost
    plan; stages up to date in a row, one line."""
    import study.plan as plan

    monkeypatch.setattr(plan, "projected_stage_seconds",
                        lambda stages, flags, measure=True: ({s.name: 60.0 for s in stages}, "test"))
    assert run() == 0
    lines = capsys.readouterr().out.splitlines()
    status = [STATUS.match(line) for line in lines if re.match(r"\[run_all\] \d+/", line)]
    assert all(status) and [int(m[1]) for m in status] == list(range(1, 22))
    assert status[0][0].endswith(", about 20 min left")          # 20 stages to go, 60 s each projected
    assert status[-1][5] is None                                  # nothing left after the last
    assert run() == 0
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "up to date" in line] == [
        f"[run_all] 1-21/21 up to date, skipped: {' '.join(s.name for s in STAGES)} (FORCE=1 reruns them)"]


# ----------------------------------------------------------------------------- 3. quiet output


def test_a_stage_output_goes_to_its_log_and_live_only_when_verbose(tmp_path, capfd):
    script = [sys.executable, "-c", "for i in range(50): print('line', i)"]
    assert runner.run_logged(script, tmp_path / "quiet.log", echo=False) == 0
    assert capfd.readouterr().out == "" and len((tmp_path / "quiet.log").read_text().splitlines()) == 50
    assert runner.run_logged(script, tmp_path / "live.log", echo=True) == 0
    assert capfd.readouterr().out.count("line ") == 50


def test_a_failed_stage_shows_its_last_lines_and_its_log(tmp_path):
    """Through run_all.sh: every line on stdout is the runner's; the failed stage's error is shown
    under its status line, with the path of its whole output."""
    env = {**os.environ, "PYTHON": sys.executable, "PROFILE": "smoke", "DATASET": "cifar10",
           "CIFAR_DIR": str(write_damaged_cifar10(tmp_path / "data")), "LOG_DIR": str(tmp_path / "logs"),
           "RESULTS_DIR": str(tmp_path / "r"), "CHECKPOINT_DIR": str(tmp_path / "c")}
    out = subprocess.run(["bash", str(ROOT / "run_all.sh"), "baselines"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1
    assert all(line.startswith("[run_all]") for line in out.stdout.splitlines()), out.stdout
    assert "[run_all] 1/1 baselines (" in out.stdout and ": failed in " in out.stdout
    assert "data_batch_1 is damaged" in out.stderr and str(tmp_path / "logs" / "baselines.log") in out.stderr


def test_known_library_warnings_are_silenced_at_their_source_and_others_kept():
    from common import library_warnings

    def emit(message, module):
        exec(compile(f"import warnings\nwarnings.warn({message!r}, UserWarning)", "<lib>", "exec"),
             {"__name__": module})

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library_warnings.install()
        emit("To copy construct from a tensor, it is recommended", "torch._inductor.mkldnn_lowerings")
        emit("To copy construct from a tensor, it is recommended", "common.models")       # not from that module
        emit("something else", "torch._inductor.mkldnn_lowerings")
    assert [str(w.message) for w in caught] == ["To copy construct from a tensor, it is recommended", "something else"]


def test_the_no_cuda_runtime_log_message_is_silenced(caplog):
    import logging

    from common import library_warnings

    library_warnings.install()
    logger = logging.getLogger("torch.utils.cpp_extension")
    with caplog.at_level(logging.WARNING, logger="torch.utils.cpp_extension"):
        logger.warning("No CUDA runtime is found, using CUDA_HOME='%s'", "/usr/local/cuda")
        logger.warning("another message")
    assert [r.getMessage() for r in caplog.records] == ["another message"]


# ----------------------------------------------------------------------------- 4. bad inputs


def _files(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


RUNNER = [sys.executable, "-m", "study.runner", "--profile", "smoke", "--dataset", "cifar10", "--no-plan",
          "--no-report", "baselines"]
PRUNE_FINAL = [sys.executable, "pruning/02_unstructured_final.py", "--profile", "smoke", "--dataset", "cifar10"]
REPLOT = [sys.executable, "-m", "study.replot", "--profile", "smoke", "--dataset", "cifar10"]
SCALING_LAW = "dataset,profile,model,k,bits\ncifar10,smoke,vgg11,4,3.2\n"
CUT_CSV = [("quantization/scaling_law.csv", SCALING_LAW + "cifar10,sm")]
DAMAGED_SIDECAR = [("quantization/scaling_law.csv", SCALING_LAW),
                   ("quantization/scaling_law.json", '{"dataset": "cifar10", "csv_sha')]
NO_PROFILE = [*RUNNER[:3], *RUNNER[5:]]


@pytest.mark.parametrize("command, env, planted, names", [
    (NO_PROFILE, {"PROFILE": "bogus"}, [], ["PROFILE", "bogus", "choose from"]),
    (RUNNER, {"JOBS": "0"}, [], ["JOBS", "'0'", "at least 1"]),
    (RUNNER, {"JOBS": "-3"}, [], ["JOBS", "-3", "at least 1"]),
    (RUNNER + ["--jobs", "0"], {}, [], ["--jobs", "0", "at least 1"]),
    (RUNNER, {"FORCE": "yes"}, [], ["FORCE", "yes", "1 (on) nor 0 (off)"]),
    (RUNNER, {"DEVICE": "quantum"}, [], ["DEVICE", "quantum", "auto, cpu"]),
    (PRUNE_FINAL + ["--target", "0.9999"], {}, [], ["--target", "0.9999", "[0, 0.95]"]),
    (RUNNER, {"RESULTS_DIR": "{tmp}/file/results"}, [], ["results folder", "file/results", "RESULTS_DIR"]),
    (RUNNER, {"CHECKPOINT_DIR": "{tmp}/file/checkpoints"}, [], ["checkpoints folder", "CHECKPOINT_DIR"]),
    (REPLOT, {}, CUT_CSV, ["scaling_law.csv", "cut short", "rerun"]),
    (REPLOT, {}, DAMAGED_SIDECAR, ["scaling_law.json", "damaged", "rerun"]),
], ids=["PROFILE=bogus", "JOBS=0", "JOBS=-3", "--jobs-0", "FORCE=yes", "DEVICE=quantum", "--target-0.9999",
        "results-folder-under-a-file", "checkpoints-folder-under-a-file", "cut-csv", "damaged-sidecar"])
def test_a_bad_input_is_one_line_naming_it_and_writes_nothing(tmp_path, command, env, planted, names):
    """Each bad value, from a flag or from run_all.sh's environment, and each folder that cannot be
    written or file that is damaged: exit status non-zero, one line on stderr that names it and
    says what to do, no traceback, and nothing written (the results, checkpoints and logs folders
    are as they were)."""
    results = tmp_path / "results"
    (results / "cifar10-smoke" / "quantization").mkdir(parents=True)
    (results / "cifar10-smoke" / "kept.txt").write_text("a result of an earlier run")
    (tmp_path / "file").write_text("a file where a folder is expected")
    for path, content in planted:
        (results / "cifar10-smoke" / path).write_text(content)
    environment = {**os.environ, "RESULTS_DIR": str(results), "CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
                   "LOG_DIR": str(tmp_path / "logs"), "CIFAR_DIR": str(tmp_path / "nowhere")}
    environment.update({k: v.format(tmp=tmp_path) for k, v in env.items()})
    before = _files(tmp_path)
    out = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert all(name in lines[0] for name in names), lines[0]
    assert _files(tmp_path) == before
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "logs").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_results_folder_is_one_line(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    env = {**os.environ, "RESULTS_DIR": str(results), "CHECKPOINT_DIR": str(tmp_path / "c"), "LOG_DIR": str(tmp_path / "l")}
    try:
        out = subprocess.run(RUNNER, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        results.chmod(0o755)
    assert out.returncode != 0 and out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "cannot write the results folder" in out.stderr


def test_a_file_system_error_on_a_named_path_is_one_line(tmp_path):
    """Whatever writes it: a folder that is not writable mid-way is one line naming it."""
    script = f"import common.flags, pathlib; common.flags.Parser(); pathlib.Path({str(tmp_path / 'f' / 'x')!r}).mkdir()"
    (tmp_path / "f").write_text("a file")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.strip().startswith("error: Not a directory: ")
    assert "Traceback" not in out.stderr


# ----------------------------------------------------------------------------- interrupted writes


def test_an_interrupted_figure_leaves_nothing_and_an_orphan_is_removed_by_the_next_write(tmp_path, monkeypatch):
    """The bug: a hidden ``.gradcam_localization.png.*.tmp`` stayed after an interrupt (a process
    killed outright never runs its clean-up). Now an interrupted write removes its temporary file,
    and the next write of the figure removes one left by a process that no longer runs."""
    from common.figures import plt, save_figure

    png = tmp_path / "figure.png"
    fig, _ = plt.subplots()
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, png)
    assert list(tmp_path.iterdir()) == []
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f".figure.png.{gone.pid}.abc123.tmp"
    orphan.write_bytes(b"half a png")
    alive = tmp_path / f".figure.png.{os.getpid()}.def456.tmp"     # a write in progress in a live process
    alive.write_bytes(b"being written")
    fig, _ = plt.subplots()
    save_figure(fig, png)
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "figure.pdf", "figure.png"]


def test_ctrl_c_during_a_run_reports_where_the_stage_output_is(fake, monkeypatch, capsys, isolated_outputs):
    def interrupted(command, log, env=None, echo=True):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_logged", interrupted)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert run() == 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "interrupted after 0 s (its output: " in capsys.readouterr().out
