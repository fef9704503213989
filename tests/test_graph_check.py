"""The device check's graphed-vs-eager comparison passes a faithful capture and fails a wrong one."""

import pytest

from study import graph_check
from common.data import load_splits
from step_helpers import BrokenCapture, SimulatedCapture


@pytest.fixture(scope="module")
def train(cifar_root):
    splits = load_splits("cifar10", cifar_root, val_images=100, train_images=384)
    return splits.train_images, splits.train_labels


def agreement(train, monkeypatch, step_class):
    monkeypatch.setattr(graph_check, "GraphedStep", step_class)
    return graph_check.step_agreement(*train, "cifar10", 10, steps=24, batch_size=32, width=0.125)


def test_a_faithful_capture_is_within_the_noise_floor(train, monkeypatch):
    rows = agreement(train, monkeypatch, SimulatedCapture)
    assert [r["run"] for r in rows] == ["eager again", "eager fused", "graphed"]
    assert rows[0]["param_max_abs"] == 0.0          # on a CPU two eager runs are bit-identical
    assert rows[-1]["passed"] is True


def test_a_capture_that_skips_updates_fails_the_check(train, monkeypatch):
    rows = agreement(train, monkeypatch, BrokenCapture)
    assert rows[-1]["passed"] is False
    assert rows[-1]["param_max_abs"] > graph_check.FACTOR * rows[-1]["floor_param_max_abs"]


def test_the_verdict_is_relative_to_the_floor():
    floor = {"param_max_abs": 1e-3, "loss_abs": 1e-4}
    assert graph_check.judge({"param_max_abs": 3e-3, "loss_abs": 1e-4}, floor)
    assert not graph_check.judge({"param_max_abs": 5e-3, "loss_abs": 1e-4}, floor)
    assert not graph_check.judge({"param_max_abs": 1e-9, "loss_abs": 1e-9}, {"param_max_abs": 0.0, "loss_abs": 0.0})
