"""An interrupted training resumes: killed (SIGKILL) after its first epoch, a rerun continues from
the state file and ends bit-identical to a training that was never interrupted."""

import subprocess
import sys
from pathlib import Path

import torch

HELPER = Path(__file__).with_name("resume_helper.py")


def train(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HELPER), *map(str, args)], capture_output=True, text=True, timeout=300)


def test_a_killed_training_resumes_bit_identical(cifar_root, tmp_path):
    whole = train(cifar_root, tmp_path / "whole.resume.pt", tmp_path / "whole.pt")
    assert whole.returncode == 0, whole.stderr
    killed = train(cifar_root, tmp_path / "cut.resume.pt", tmp_path / "cut.pt", "--kill-after-epoch", 1)
    assert killed.returncode == -9 and (tmp_path / "cut.resume.pt").exists() and not (tmp_path / "cut.pt").exists()
    resumed = train(cifar_root, tmp_path / "cut.resume.pt", tmp_path / "cut.pt")
    assert resumed.returncode == 0, resumed.stderr
    assert "continuing after epoch 1/3" in resumed.stdout
    assert "epoch=1 " not in resumed.stdout        # the first epoch was not trained again
    a, b = torch.load(tmp_path / "whole.pt"), torch.load(tmp_path / "cut.pt")
    assert a["history"] == b["history"]
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


def test_a_state_file_of_another_training_is_not_resumed(cifar_root, tmp_path):
    from common.cache import artefact_key
    from common.resume import load_state

    killed = train(cifar_root, tmp_path / "x.resume.pt", tmp_path / "x.pt", "--kill-after-epoch", 1)
    assert killed.returncode == -9
    assert load_state(tmp_path / "x.resume.pt", artefact_key({"recipe": "another"}, {})) is None
