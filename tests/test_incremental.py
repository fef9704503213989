"""An incremental run gives the numbers a fresh run would.

A researcher's loop: run, edit a profile value, run ``./run_all.sh`` again, read. The test edits
the smoke profile (baseline epochs 1 -> 2, test split 256 -> 200 images) after a first run of the
stages through colour invariance and PTQ, reruns them incrementally, and compares every CSV's
accuracy, size and count columns with a run from scratch under the edited profile. Before the
one cache rule, the students' table kept S_I's accuracy on the old test split and the named
stages ran on stale models.

The stages run in this process (their scripts' ``main``), through the real runner, so that the
profile edited here reaches them; everything else -- records, caches, resume -- is what
``./run_all.sh`` does.
"""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from common.profiles import PROFILES
from study import runner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from compare_results import differences  # noqa: E402

TARGETS = ("distillation/04_color_invariance", "quantization/01_ptq")


def in_process(command, log, env=None, echo=True):
    """``runner.run_logged``'s stand-in: the stage's script run by its ``main(argv)`` here."""
    head = 3 if command[1] == "-m" else 2
    script = command[2].replace(".", "/") + ".py" if command[1] == "-m" else command[1]
    if script.startswith("report/"):
        return 0
    spec = importlib.util.spec_from_file_location(f"_incremental_{Path(script).stem}", ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        patch.setattr(sys, "argv", [script, *command[head:]])
        try:
            module.main(command[head:])
        except SystemExit as stop:
            return stop.code or 0
    return 0


def run_all(folder: Path, cifar_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("RESULTS_DIR", str(folder / "results"))
    monkeypatch.setenv("CHECKPOINT_DIR", str(folder / "checkpoints"))
    assert runner.main(["--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--no-report",
                        *TARGETS]) == 0


def test_an_incremental_run_after_a_profile_edit_writes_what_a_fresh_run_writes(cifar_root, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "run_logged", in_process)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    run_all(tmp_path / "incremental", cifar_root, monkeypatch)
    monkeypatch.setitem(PROFILES, "smoke", dataclasses.replace(PROFILES["smoke"], epochs=2, test_images=200))
    run_all(tmp_path / "incremental", cifar_root, monkeypatch)
    run_all(tmp_path / "fresh", cifar_root, monkeypatch)

    incremental, fresh = (tmp_path / name / "results" / "cifar10-smoke" for name in ("incremental", "fresh"))
    csvs = sorted(p.relative_to(fresh) for p in fresh.rglob("*.csv"))
    assert csvs == sorted(p.relative_to(incremental) for p in incremental.rglob("*.csv"))
    assert {"baselines/baselines.csv", "distillation/students.csv", "distillation/color_invariance.csv",
            "quantization/ptq.csv"} <= {str(p) for p in csvs}
    found = {str(name): differences(incremental / name, fresh / name) for name in csvs}
    assert {name: diff for name, diff in found.items() if diff} == {}
