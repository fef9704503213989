"""Checkpoints round-trip, carry metadata, and refuse another run's dataset or profile."""

import hashlib
import json
import os
import stat

import pytest
import torch

from common.checkpoints import CheckpointMismatchError, load_checkpoint, save_checkpoint
from common.measure import saved_size_bytes
from common.models import build_model
from common.results import read_rows, write_results


def test_round_trip_keeps_weights_config_and_meta(tmp_path):
    model = build_model("vgg11", 10, 0.25).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, {"dataset": "cifar10", "profile": "smoke",
                                                      "epochs": 3, "test_top1_acc": 12.5})
    loaded, meta = load_checkpoint(path, "cifar10", "smoke")
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), loaded.eval()(x))
    assert meta["epochs"] == 3 and meta["model_config"] == model.config
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_checkpoint_of_another_profile_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", build_model("vgg11", 10, 0.125),
                           {"dataset": "cifar10", "profile": "smoke"})
    with pytest.raises(CheckpointMismatchError, match="profile='smoke'"):
        load_checkpoint(path, "cifar10", "cpu")
    with pytest.raises(CheckpointMismatchError, match="dataset"):
        load_checkpoint(path, "cifar100", "smoke")


def test_metadata_must_name_dataset_and_profile(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        save_checkpoint(tmp_path / "m.pt", build_model("vgg11", 10, 0.125), {"dataset": "cifar10"})


def test_results_csv_and_provenance_sidecar(tmp_path):
    prov = {"dataset": "cifar10", "profile": "smoke", "seed": 0}
    path = write_results([{"model": "a", "top1_acc": 1.5}, {"model": "b", "latency_ms": 2.0}],
                         tmp_path / "t.csv", prov)
    rows = read_rows(path)
    assert list(rows[0]) == ["dataset", "profile", "model", "top1_acc", "latency_ms"]
    assert rows[1]["latency_ms"] == "2.0" and rows[0]["latency_ms"] == ""
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == {**prov, "csv_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_a_results_csv_that_is_not_what_its_script_wrote_is_refused_in_one_line(tmp_path):
    """Item 4/8 of the incremental-run issue: an edited, damaged or copied-in CSV was read as if
    its stage had written it. Its sidecar's sha256 now names the bytes the script wrote."""
    from common.errors import UserError

    path = write_results([{"model": "a", "top1_acc": 1.5}], tmp_path / "t.csv",
                         {"dataset": "cifar10", "profile": "smoke", "command": "python pruning/01_x.py --profile smoke"})
    path.write_text(path.read_text().replace("1.5", "9.5"))
    with pytest.raises(UserError, match=r"t.csv is not the file its script wrote .* rerun python pruning/01_x.py,"):
        read_rows(path)
    path.write_text(path.read_text()[:-7])          # cut mid-line
    with pytest.raises(UserError, match="not the file its script wrote"):
        read_rows(path)


def test_results_files_get_the_umask_mode_not_the_temporary_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_results([{"model": "a"}], tmp_path / "t.csv", {"dataset": "cifar10", "profile": "smoke"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_saved_size_is_the_real_file(tmp_path):
    model = build_model("vgg11", 10, 0.125)
    size = saved_size_bytes(model.state_dict(), tmp_path / "w.pt")
    n_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert n_bytes < size < n_bytes + 64_000  # tensors plus pickle/zip overhead
    assert size == (tmp_path / "w.pt").stat().st_size


def test_load_model_gives_every_kind_back_ready_for_evaluation(tmp_path):
    """Baseline, student and colour teacher are dense VGG checkpoints; the pruned ones are dense
    with zeros (unstructured) or smaller (channel-pruned); the int8 model is a program."""
    from study.loading import load_model
    from pruning.methods import channel_prune, overall_sparsity, prune_by_magnitude, remove_masks
    from quantization.pt2e import int8_program

    torch.manual_seed(0)
    dense = build_model("vgg11", 10, 0.125).eval()
    unstructured = remove_masks(prune_by_magnitude(build_model("vgg11", 10, 0.125), {"stages.2.0.0": 0.7})).eval()
    channel = channel_prune(build_model("vgg11", 10, 0.125), 0.5).eval()
    x = torch.randn(4, 3, 32, 32)
    meta = {"dataset": "cifar10", "profile": "smoke"}
    for name, model in (("dense", dense), ("unstructured", unstructured), ("channel", channel)):
        loaded = load_model(save_checkpoint(tmp_path / f"{name}.pt", model, meta))
        assert not loaded.training and torch.equal(loaded(x), model(x)), name
    assert overall_sparsity(load_model(tmp_path / "unstructured.pt")) == overall_sparsity(unstructured) > 0
    assert sum(p.numel() for p in load_model(tmp_path / "channel.pt").parameters()) < \
        sum(p.numel() for p in dense.parameters())

    program, _ = int8_program(dense, [x], tmp_path / "int8.pt2")
    loaded = load_model(tmp_path / "int8.pt2")
    assert torch.equal(loaded(x), program(x))
    assert (loaded(x).argmax(1) == dense(x).argmax(1)).float().mean() >= 0.5
    with pytest.raises(Exception, match="load it with device='cpu'"):
        load_model(tmp_path / "int8.pt2", device="cuda")
