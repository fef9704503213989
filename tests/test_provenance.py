"""Provenance ties numbers to code: the commit, whether the tree was dirty, a hash of the changes."""

import json
import subprocess
from pathlib import Path

import pytest

import common.results as results
from common.results import git_state, provenance

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A one-commit git repository standing in for the project."""
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    monkeypatch.setattr(results, "PROJECT_ROOT", tmp_path)
    return tmp_path


def test_a_clean_tree_is_not_dirty_and_ignored_files_do_not_count(repo):
    (repo / "ignored").mkdir()
    (repo / "ignored" / "weights.pt").write_text("not code")
    state = git_state()
    assert state["dirty"] is False and len(state["git_commit"]) == 40 and "diff_sha256" not in state


def test_an_untracked_module_makes_the_tree_dirty(repo):
    """The bug: the old check ignored untracked files, so results written by a new, uncommitted
    module named a commit that does not contain it as if it had."""
    (repo / "timing.py").write_text("def new(): pass\n")
    state = git_state()
    assert state["dirty"] is True
    assert state == git_state()                       # the same changes, the same hash
    (repo / "timing.py").write_text("def new(): return 1\n")
    assert git_state()["diff_sha256"] != state["diff_sha256"]


def test_results_written_by_a_run_do_not_make_its_later_results_dirty(repo):
    """The bug: a stage's new CSV (or completion record) under results/ made every later stage of
    the same run from a clean tree say dirty: true."""
    (repo / "results" / "cifar10-cpu").mkdir(parents=True)
    (repo / "results" / "cifar10-cpu" / "baselines.csv").write_text("model\nvgg11\n")
    assert git_state()["dirty"] is False
    (repo / "b.py").write_text("y = 1\n")
    assert git_state()["dirty"] is True


def test_an_edited_tracked_file_makes_the_tree_dirty_and_the_sidecar_says_so(repo):
    (repo / "a.py").write_text("x = 2\n")
    prov = provenance("smoke", "cifar10", 0, "cpu", 0.0)
    assert prov["dirty"] is True and len(prov["diff_sha256"]) == 64
    assert not prov["git_commit"].endswith("-dirty")


def committed_sidecars() -> list[Path]:
    return [p for p in sorted((ROOT / "results").rglob("*.json")) if "-smoke" not in str(p)]


def test_every_committed_sidecar_comes_from_a_clean_tree_or_says_why_not():
    """Committed results are written from a clean tree (``dirty: false``); files written before
    the flag existed carry an explicit ``provenance_note`` instead."""
    assert committed_sidecars(), "no committed results found"
    bad = []
    for path in committed_sidecars():
        info = json.loads(path.read_text())
        if "git_commit" not in info:
            continue
        if info.get("dirty") is not False and not info.get("provenance_note"):
            bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"written from a dirty tree (or not saying): {bad}"


def test_a_sidecar_names_the_kind_of_machine_that_decides_the_numbers():
    """Two kinds of CPU train different models from the same code and seed (bf16 where the CPU has
    AVX512-BF16 or AMX, fp32 elsewhere): every sidecar says which kind wrote it."""
    import torch

    from common.numerics import fast_bf16_available

    machine = provenance("smoke", "cifar10", 0, "cpu", 0.0)["machine"]
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["training_dtype"] == ("bf16" if fast_bf16_available("cpu") else "fp32")
    assert {"cpu_model", "avx512_bf16", "amx", "vnni"} <= set(machine)


@pytest.mark.parametrize("vnni", [False, True])
def test_a_sidecar_names_vnni_which_decides_the_int8_activation_range(monkeypatch, vnni):
    """Without VNNI the PT2E int8 programs quantize activations to a 7-bit range, so the int8 rows
    of two CPUs differ: the machine facts name VNNI, and the quantizer reads it from them."""
    import torch

    from common.numerics import machine_kind
    from quantization import pt2e

    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    assert machine_kind("cpu")["vnni"] is vnni
    monkeypatch.undo()
    # the machine facts say the opposite of torch's probe: the quantizer follows the facts
    facts = not torch.cpu._is_vnni_supported()
    monkeypatch.setattr(pt2e, "machine_kind", lambda device: {**machine_kind(device), "vnni": facts}, raising=True)
    assert pt2e.activation_range_reduced() is (not facts)
