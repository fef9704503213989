"""Training loop, schedule and accuracy helpers."""

import math

import pytest
import torch

from common.data import load_splits
from common.models import build_model
from common.profiles import PROFILES, get_profile
from common.training import Recipe, accuracy_from_logits, evaluate, fit, lr_at


def test_a_few_steps_lower_the_loss_on_a_learnable_task(cifar_root):
    splits = load_splits("cifar10", cifar_root, val_images=100)
    model = build_model("vgg11", num_classes=10, width=0.125)
    recipe = Recipe(epochs=4, batch_size=64, lr=0.05, seed=0)
    history = fit(model, splits, recipe, "cpu", progress=False)
    assert len(history) == 4
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert history[-1]["val_top1_acc"] > 30  # chance is 10%


def test_after_step_runs_once_per_optimizer_step(cifar_root):
    splits = load_splits("cifar10", cifar_root, val_images=100, train_images=256)
    calls = []
    fit(build_model("vgg11", 10, 0.125), splits, Recipe(epochs=2, batch_size=64), "cpu",
        after_step=lambda: calls.append(1), eval_split=None, progress=False)
    assert len(calls) == 2 * (256 // 64)


def test_onecycle_and_cosine_schedules():
    r = Recipe(epochs=1, lr=0.1, warmup_fraction=0.2)
    assert lr_at(0, 100, r) == pytest.approx(0.01)
    assert lr_at(20, 100, r) == pytest.approx(0.1)
    assert lr_at(60, 100, r) == pytest.approx(0.05)
    assert lr_at(100, 100, r) == pytest.approx(0.0, abs=1e-12)
    c = r.but(schedule="cosine")
    assert lr_at(50, 100, c) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi / 2)))
    with pytest.raises(ValueError):
        lr_at(0, 10, r.but(schedule="step"))


def test_accuracy_from_hand_made_logits():
    logits = torch.tensor([[9., 1, 2, 3, 4, 5, 0],    # label 0: top-1 hit
                           [0., 9, 8, 7, 6, 5, 4],    # label 5: in top-5 (rank 5)
                           [0., 9, 8, 7, 6, 5, 4],    # label 6: rank 6, miss
                           [1., 2, 3, 9, 0, 0, 0]])   # label 2: rank 2
    labels = torch.tensor([0, 5, 6, 2])
    acc = accuracy_from_logits(logits, labels)
    assert acc == {"top1_acc": 25.0, "top5_acc": 75.0}


def test_evaluate_runs_in_eval_mode_without_grad(cifar_root):
    splits = load_splits("cifar10", cifar_root, val_images=10, test_images=50)
    model = build_model("vgg11", 10, 0.125).train()
    acc = evaluate(model, splits.test_images, splits.test_labels, "cifar10", batch_size=16)
    assert not model.training and 0 <= acc["top1_acc"] <= acc["top5_acc"] <= 100


def test_profile_selection(monkeypatch):
    assert get_profile("smoke", announce=False) is PROFILES["smoke"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_profile(None, announce=False).name == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_profile(None, announce=False).name == "full"
    with pytest.raises(ValueError, match="smoke"):
        get_profile("huge")


def test_profiles_grow_from_smoke_to_full():
    s, c, f = PROFILES["smoke"], PROFILES["cpu"], PROFILES["full"]
    assert s.width < c.width <= f.width and s.epochs < c.epochs < f.epochs
    assert s.train_images is not None and c.train_images is None and f.train_images is None
