"""Trained baselines on demand: return the cached checkpoint, or train it and cache it.

Every later script gets its VGG-11 / VGG-16 / VGG-19 through ``get_baseline`` so that a model
is trained once per dataset, profile and seed, and reused by pruning, quantization and
distillation alike.
"""

from __future__ import annotations

import time

import torch

from common.cache import KEY
from common.checkpoints import announce, save_checkpoint
from common.cli import RunContext
from common.data import num_classes
from common.jobs import Job
from common.resume import resume_path
from common.models import VGG, build_model, count_parameters
from common.numerics import machine_kind
from common.results import device_description, git_commit
from common.training import Recipe, evaluate, fit, trained_seconds


def baseline_recipe(ctx: RunContext) -> Recipe:
    """The profile's baseline recipe for this run's seed and compile flag."""
    return Recipe.from_profile(ctx.profile, seed=ctx.seed, compile=ctx.compile, step=ctx.train_step)


FINETUNE_LR_FACTOR = 0.1   # fine-tunes (pruning recovery, QAT) peak at a tenth of the profile's lr


def finetune_recipe(ctx: RunContext, epochs: int | None = None) -> Recipe:
    """Short cosine fine-tune at a tenth of the profile's peak learning rate
    (``epochs`` defaults to the profile's finetune_epochs)."""
    return Recipe.from_profile(ctx.profile, epochs=epochs or ctx.profile.finetune_epochs,
                               lr=ctx.profile.lr * FINETUNE_LR_FACTOR, schedule="cosine",
                               seed=ctx.seed, compile=ctx.compile, step=ctx.train_step)


def train_and_cache(ctx: RunContext, name: str, model: VGG, recipe: Recipe, force: bool = False,
                    inputs: dict[str, str] | None = None, code_of: str = __name__, **meta) -> tuple[VGG, dict]:
    """Return the checkpoint ``name`` of this run when its key matches (``common.cache``), else
    train ``model`` and cache it.

    The key: ``recipe`` and the model's config, this run's data, ``inputs`` (role -> weights
    sha256 of the models it starts from, e.g. the base teacher of a fine-tune) and the code of
    module ``code_of`` (the one that trains it). Training uses ``recipe`` on the train split and
    resumes an interrupted run; the cached metadata records the key, the recipe, the validation
    and test accuracy (%), parameters, train_seconds and the kind of machine. The model comes back
    on ``ctx.device`` in eval mode.
    """
    path = ctx.checkpoint(name)
    key = ctx.artefact_key({"recipe": recipe.cache_key(), "model_config": model.config}, inputs, code_of)
    if not force and (hit := ctx.cached_checkpoint(name, key)):
        return hit
    splits = ctx.splits
    model = model.to(ctx.device)
    history = fit(model, splits, recipe, ctx.device, progress=ctx.progress, desc=name, resume=resume_path(path),
                  resume_key=key, keep_state=True)
    seconds = trained_seconds(history)
    test = evaluate(model, splits.test_images, splits.test_labels, splits.name)
    meta = {
        **meta, "name": name, "dataset": ctx.dataset, "profile": ctx.profile.name, KEY: key,
        "recipe": recipe.cache_key(), "epochs": recipe.epochs, "seed": recipe.seed,
        "val_top1_acc": history[-1].get("val_top1_acc"),
        "test_top1_acc": test["top1_acc"], "test_top5_acc": test["top5_acc"],
        "params": count_parameters(model), "train_seconds": seconds,
        "history": history, "device": device_description(ctx.device), "machine": machine_kind(ctx.device),
        "git_commit": git_commit(), "trained_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_checkpoint(path, model, meta)
    resume_path(path).unlink(missing_ok=True)   # the model is cached: its training state goes
    announce(name, f"trained in {seconds:.0f}s, test top-1 {test['top1_acc']:.2f}% -> {path}")
    return model.eval(), {**meta, "model_config": model.config}


def get_baseline(ctx: RunContext, model_name: str, force: bool = False) -> tuple[VGG, dict]:
    """The trained baseline ``model_name`` ('vgg11', 'vgg16', ...) of this run: cached or trained.

    Width and recipe come from the profile; the checkpoint is
    ``checkpoints/<dataset>-<profile>/<model>_seed<seed>.pt``.
    """
    torch.manual_seed(ctx.seed)  # the initial weights depend on the seed alone
    model = build_model(model_name, num_classes(ctx.dataset), ctx.profile.width)
    return train_and_cache(ctx, baseline_name(model_name, ctx.seed), model, baseline_recipe(ctx),
                           force=force, architecture=model_name, width=ctx.profile.width)


def baseline_name(model_name: str, seed: int) -> str:
    """The checkpoint name of a baseline: ``<model>_seed<seed>``."""
    return f"{model_name}_seed{seed}"


def baseline_jobs(model_names, seed: int, force: bool = False) -> list[Job]:
    """One ``get_baseline`` job per model of ``model_names`` (the run's ``seed``), keyed by its
    checkpoint; the baselines stage runs them (``common.train``) and a cost plan prices them."""
    return [Job("common.baselines:get_baseline", {"model_name": name, "force": force}, name,
                baseline_name(name, seed), model=name, epochs_of="epochs") for name in model_names]
