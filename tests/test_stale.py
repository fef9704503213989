"""run_all.sh: stale stages rerun (inputs newer than the output); with KEEP_GOING=1 it goes past a
failed stage, logs each stage and prints the status lines the device check reads."""

import os
import subprocess
import sys
from pathlib import Path

from common.stale import stale_reason

ROOT = Path(__file__).resolve().parents[1]


def _touch(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))
    return path


def test_stale_reason(tmp_path):
    out, a, b = tmp_path / "out.csv", tmp_path / "a.pt", tmp_path / "b.csv"
    assert "missing" in stale_reason(out, [a])
    _touch(out, 2000)
    _touch(a, 1000)
    assert stale_reason(out, [a, tmp_path / "absent.pt"]) is None   # absent inputs are not compared
    _touch(b, 3000)
    assert stale_reason(out, [a, b]) == f"{b} is newer than {out}"


def test_run_all_reruns_exactly_the_stages_whose_inputs_are_newer(tmp_path):
    """Every output of run_all.sh exists; then the VGG-16 checkpoint is retrained (newer): the
    stages that read it rerun, the others are skipped. A stand-in interpreter logs each command."""
    log = tmp_path / "commands.log"
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [[ "$1 $2" == "-m common.stale" ]]; then exec {sys.executable} "$@"; fi
echo "$*" >> {log}
""")
    fake.chmod(0o755)
    results, checkpoints = tmp_path / "results", tmp_path / "checkpoints"
    run = results / "cifar10-cpu"
    outputs = ["baselines/baselines.csv", "pruning/unstructured_sensitivity.csv", "pruning/unstructured_final.csv",
               "pruning/structured_sensitivity.csv", "pruning/structured_final.csv", "pruning/weight_stats.csv",
               "pruning/pruned_models.csv", "pruning/gradcam_pruning.csv", "pruning/accuracy_vs_sparsity.csv",
               "quantization/ptq.csv", "quantization/qat.csv", "quantization/scaling_law.csv",
               "quantization/mixed_precision.csv", "quantization/outliers_per_layer.csv",
               "distillation/students.csv", "distillation/alignment.csv", "distillation/gradcam_localization.csv",
               "distillation/color_invariance.csv", "distillation/teacher_size.csv",
               "combined/pipelines.csv", "combined/pareto_points.csv"]
    for name in ("vgg11", "vgg16", "vgg19", "vgg11_unstructured70", "vgg11_structured70"):
        _touch(checkpoints / "cifar10-cpu" / f"{name}_seed0.pt", 1000)
    for i, name in enumerate(outputs):
        _touch(run / name, 2000 + i)      # each output newer than what it reads
    env = {**os.environ, "PYTHON": str(fake), "PROFILE": "cpu", "DATASET": "cifar10",
           "RESULTS_DIR": str(results), "CHECKPOINT_DIR": str(checkpoints)}

    def ran() -> list[str]:
        log.unlink(missing_ok=True)
        subprocess.run(["bash", str(ROOT / "run_all.sh")], env=env, check=True, capture_output=True, text=True)
        return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []

    assert ran() == ["report/build.py"]                       # everything up to date: only the report
    _touch(checkpoints / "cifar10-cpu" / "vgg16_seed0.pt", 5000)
    assert ran() == ["-m", "quantization/03_scaling_law.py", "distillation/01_students.py",
                     "distillation/02_alignment.py", "distillation/03_gradcam.py",
                     "distillation/04_color_invariance.py", "distillation/05_teacher_size.py", "report/build.py"]


def test_keep_going_runs_past_a_failed_stage_and_reports_every_stage(tmp_path):
    """The stand-in interpreter fails quantization/01_ptq.py; every later stage still runs."""
    from common.device_check import last_line, parse_stage_lines
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [[ "$1 $2" == "-m common.stale" ]]; then exec {sys.executable} "$@"; fi
if [[ "$1" == quantization/01_ptq.py ]]; then echo "Traceback ..."; echo "RuntimeError: no kernel" >&2; exit 3; fi
echo "ran $1"
""")
    fake.chmod(0o755)
    logs = tmp_path / "logs"
    env = {**os.environ, "PYTHON": str(fake), "PROFILE": "smoke", "DATASET": "cifar10", "KEEP_GOING": "1",
           "LOG_DIR": str(logs), "RESULTS_DIR": str(tmp_path / "r"), "CHECKPOINT_DIR": str(tmp_path / "c")}
    out = subprocess.run(["bash", str(ROOT / "run_all.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "1 stage(s) failed: quantization/01_ptq" in out.stderr
    rows = parse_stage_lines(out.stdout)
    assert [r["stage"] for r in rows][:2] == ["baselines", "pruning/01_unstructured_sensitivity"]
    assert rows[-1]["stage"] == "report" and len(rows) == 22
    assert [r["stage"] for r in rows if r["status"] == "failed"] == ["quantization/01_ptq"]
    assert all(r["status"] == "ok" for r in rows if r["stage"] != "quantization/01_ptq")
    assert last_line(logs / "quantization_01_ptq.log") == "RuntimeError: no kernel"


def test_device_check_runs_every_stage_with_its_own_interpreter(tmp_path, monkeypatch):
    """The bug: ``venv/bin/python -m common.device_check`` without an activated venv ran
    run_all.sh's stages with the first ``python`` on PATH (no torch there): 0 stages ok."""
    import common.device_check as device_check
    (tmp_path / "run_all.sh").write_text(
        'PYTHON=${PYTHON:-$(command -v python || command -v python3)}\n'   # run_all.sh's own choice
        'if "$PYTHON" -c "import torch" 2>/dev/null; then status=ok; else status=failed; fi\n'
        'echo "[run_all] stage baselines $status 0"\n')
    monkeypatch.setattr(device_check, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")     # a python without torch, or none, comes first
    monkeypatch.delenv("PYTHON", raising=False)
    rows = device_check.run_stages("cpu", "cifar10", tmp_path, tmp_path / "scratch")
    assert [(r["stage"], r["status"]) for r in rows] == [("baselines", "ok")]
