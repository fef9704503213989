"""get_baseline trains once, then serves the cache; a changed recipe retrains."""

import torch

from common import baselines
from common.cli import RunContext
from common.profiles import PROFILES


def smoke_context(cifar_root, seed=0):
    return RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=cifar_root,
                      device=torch.device("cpu"), seed=seed, progress=False)


def test_trains_once_then_loads_the_cache(cifar_root, isolated_outputs):
    model, meta = baselines.get_baseline(smoke_context(cifar_root), "vgg11")
    path = isolated_outputs / "checkpoints" / "cifar10-smoke" / "vgg11_seed0.pt"
    stamp = path.stat().st_mtime_ns
    again, meta_again = baselines.get_baseline(smoke_context(cifar_root), "vgg11")
    assert path.stat().st_mtime_ns == stamp
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model.eval()(x), again.eval()(x), atol=1e-5)  # same weights; layouts differ
    assert meta_again["test_top1_acc"] == meta["test_top1_acc"] and meta["epochs"] == 1
    assert meta["width"] == PROFILES["smoke"].width and meta["profile"] == "smoke"


def test_another_seed_or_recipe_trains_a_new_model(cifar_root, isolated_outputs, monkeypatch):
    baselines.get_baseline(smoke_context(cifar_root), "vgg11")
    baselines.get_baseline(smoke_context(cifar_root, seed=1), "vgg11")
    assert (isolated_outputs / "checkpoints" / "cifar10-smoke" / "vgg11_seed1.pt").exists()
    trained = []
    original_fit = baselines.fit
    monkeypatch.setattr(baselines, "fit", lambda *a, **k: trained.append(1) or original_fit(*a, **k))
    monkeypatch.setattr(baselines, "baseline_recipe",
                        lambda ctx: baselines.Recipe.from_profile(ctx.profile, lr=0.01, seed=ctx.seed))
    _, meta = baselines.get_baseline(smoke_context(cifar_root), "vgg11")
    assert trained == [1] and meta["recipe"]["lr"] == 0.01


def test_a_resumed_training_counts_the_epochs_of_the_process_before(cifar_root, isolated_outputs, monkeypatch):
    """The bug: train_seconds timed only the process that finished a training, so a training
    resumed after an interruption reported the last stretch alone (a 40-minute training as 2)."""
    from distillation import study as distillation

    def resumed(real_fit):
        def fit(*args, **kwargs):
            history = real_fit(*args, **kwargs)
            history[0]["seconds"] += 1000.0     # epoch 1 as if an earlier, interrupted process trained it
            return history
        return fit

    monkeypatch.setattr(baselines, "fit", resumed(baselines.fit))
    monkeypatch.setattr(distillation, "fit", resumed(distillation.fit))
    _, baseline = baselines.get_baseline(smoke_context(cifar_root), "vgg11")
    _, student = distillation.get_student(smoke_context(cifar_root), "independent")
    for meta in (baseline, student):
        assert meta["train_seconds"] == sum(h["seconds"] for h in meta["history"]) > 1000.0
