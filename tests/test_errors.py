"""An error a user can cause is one line that names the file or value and what to do, with a
non-zero exit and no traceback, before any work starts; Ctrl-C is one line too."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(args, tmp_path, **popen):
    env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"), "CHECKPOINT_DIR": str(tmp_path / "checkpoints")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, out.stderr
    return errors[0]


@pytest.mark.parametrize("flags, says", [
    (["pruning/02_unstructured_final.py", "--target", "-0.1"], "-0.1 is outside [0, 0.95]"),
    (["pruning/02_unstructured_final.py", "--target", "nan"], "not a finite number"),
    (["pruning/08_accuracy_vs_sparsity.py", "--targets", "0.5", "1.5"], "not a fraction"),
    (["quantization/02_qat.py", "--epochs", "-1"], "must be at least 1"),
    (["distillation/01_students.py", "--teacher", "vgg99"], "invalid choice: 'vgg99'"),
    (["pruning/01_unstructured_sensitivity.py", "--device", "tpu"], "is not a device name"),
    (["pruning/01_unstructured_sensitivity.py", "--jobs", "0"], "must be at least 1"),
    (["pruning/01_unstructured_sensitivity.py", "--set", "lrr=0.1"], "one of: width, train_images"),
    (["pruning/01_unstructured_sensitivity.py", "--set", "lr=fast"], "lr must be a number > 0"),
    (["distillation/01_students.py", "--set", "student_epochs=0"], "student_epochs must be an integer >= 1"),
    (["-m", "study.runner", "--set", "width=9"], "width must be a number > 0 and <= 4"),
    (["-m", "study.runner", "--variant", "a/b"], "a variant's name uses letters"),
])
def test_an_out_of_range_value_is_refused_when_parsed(flags, says, tmp_path, cifar_root):
    out = run([*flags, "--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root)], tmp_path)
    assert says in one_line_error(out) and out.returncode == 2
    assert not (tmp_path / "results").exists() and not (tmp_path / "checkpoints").exists()   # nothing ran


@pytest.mark.parametrize("flags, says", [
    (["--compile"], "a graphed step cannot be compiled: drop --compile"),
    (["--train-step", "eager"], "drop --train-step eager"),
    (["--profile", "full"], "drop --profile full"),
    (["--check-steps", "0"], "--check-steps must be at least 1"),
    (["--concurrent", "2", "0"], "--concurrent takes process counts of 1 or more"),
])
def test_the_device_check_refuses_what_it_cannot_run_in_one_line(flags, says, tmp_path, cifar_root):
    out = run(["-m", "study.device_check", *flags, "--dataset", "cifar10", "--data-dir", str(cifar_root)], tmp_path)
    assert says in one_line_error(out)
    assert not (tmp_path / "results").exists()   # nothing ran


def test_bad_overrides_from_the_environment_are_one_line(tmp_path, cifar_root):
    env_run = subprocess.run([sys.executable, "-m", "common.train", "--profile", "smoke", "--dataset", "cifar10",
                              "--data-dir", str(cifar_root)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OVERRIDES": "epochs=2 speed=11", "RESULTS_DIR": str(tmp_path / "r")})
    assert "$OVERRIDES: 'speed=11': set a profile value as key=value" in one_line_error(env_run)
    assert not (tmp_path / "r").exists()


def test_a_truncated_checkpoint_is_one_line_naming_it(tmp_path, cifar_root):
    bad = tmp_path / "checkpoints" / "cifar10-smoke" / "vgg11_seed0.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = run(["pruning/01_unstructured_sensitivity.py", "--profile", "smoke", "--dataset", "cifar10",
               "--data-dir", str(cifar_root), "--device", "cpu"], tmp_path)
    line = one_line_error(out)
    assert str(bad) in line and "delete it" in line


def test_a_damaged_data_file_is_one_line_naming_it(tmp_path, cifar_root):
    data = tmp_path / "data"
    shutil.copytree(cifar_root / "cifar-10-batches-py", data / "cifar-10-batches-py")
    batch = data / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:1000])
    out = run(["-m", "common.train", "--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(data),
               "--model", "vgg11"], tmp_path)
    line = one_line_error(out)
    assert str(batch) in line and "damaged" in line


def test_ctrl_c_is_one_line_saying_what_was_kept(tmp_path, cifar_root):
    env = {**os.environ, "RESULTS_DIR": str(tmp_path / "results"), "CHECKPOINT_DIR": str(tmp_path / "checkpoints")}
    env.pop("PYTHONUNBUFFERED", None)   # as a user's shell has it: the [run] line must still come at once
    proc = subprocess.Popen([sys.executable, "-m", "common.train", "--profile", "smoke", "--dataset", "cifar10",
                             "--data-dir", str(cifar_root), "--model", "vgg11", "vgg16", "vgg19"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal,
    for line in proc.stdout:            # even under a background pytest; interrupt once a training is under way
        if line.startswith("[run]"):
            assert proc.poll() is None, "the [run] line came only at exit: standard output is not line-buffered"
            time.sleep(0.3)             # three smoke trainings take 1.5-4 s after [run] on the machines seen
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert "interrupted (Ctrl-C)" in err and "run the same command again" in err


def test_output_reaches_a_pipe_line_by_line():
    """A stage's log (or ``| tee``) shows each line when printed, not when the script ends."""
    script = "from common import errors; errors.install(); print('[run] started'); import time; time.sleep(20)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}   # as a user's shell has it
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        first = proc.stdout.readline()
        assert first.startswith("[run]") and time.monotonic() - t0 < 10, "the line came only at exit"
    finally:
        proc.kill()
        proc.wait()
