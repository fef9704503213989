"""Train and evaluate loops shared by every experiment.

``fit`` runs SGD (nesterov momentum) under a one-cycle or cosine schedule on tensors that live on
the training device, with bf16 autocast and channels_last where they help and an optional
``torch.compile``. Methods that need a different loss (distillation, QAT, masked fine-tuning)
pass ``loss_fn`` and ``after_step`` instead of writing another loop.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from common.augment import BatchTransform
from common.cache import START, artefact_key, weights_sha256
from common.curves import log_epoch, tensorboard_writer
from common.data import CifarSplits, iterate_batches
from common.profiles import Profile
from common.numerics import fast_bf16_available
from common.resume import load_state, restore_state, save_state
from common.train_step import EagerStep, GraphedStep, resolve_step_mode

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is trained."""

    epochs: int
    batch_size: int = 128
    lr: float = 0.1                 # peak learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    label_smoothing: float = 0.0
    schedule: str = "onecycle"      # 'onecycle' (linear warm-up, cosine decay) | 'cosine'
    warmup_fraction: float = 0.15   # part of the steps spent warming up (onecycle)
    bf16: bool = True               # bf16 autocast where the device has fast bf16
    channels_last: bool = True
    compile: bool = False           # torch.compile the model for training
    step: str = "auto"              # 'auto' | 'eager' | 'graphed' (common.train_step; auto: graphed on CUDA)
    color_jitter: bool = False      # colour-jitter augmentation (colour-invariance study)
    seed: int = 0

    @classmethod
    def from_profile(cls, profile: Profile, epochs: int | None = None, **overrides) -> "Recipe":
        """The profile's recipe; ``epochs`` defaults to the baseline epochs."""
        settings = {"epochs": profile.epochs if epochs is None else epochs,
                    "batch_size": profile.batch_size, "lr": profile.lr,
                    "weight_decay": profile.weight_decay}
        return cls(**{**settings, **overrides})

    def but(self, **changes) -> "Recipe":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    def cache_key(self) -> dict:
        """The fields that decide what is trained (a cached checkpoint must match them): all but
        how the step executes (``compile``, ``step``)."""
        return {k: v for k, v in asdict(self).items() if k not in EXECUTION_FIELDS}


EXECUTION_FIELDS = ("compile", "step")   # how a recipe runs, not what it trains


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    """The default loss: ``model(x)`` and cross-entropy (with optional label smoothing)."""

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        logits = model(x)
        return logits, F.cross_entropy(logits, y, label_smoothing=label_smoothing)

    return loss_fn


def lr_at(step: int, total_steps: int, recipe: Recipe) -> float:
    """Learning rate at optimizer step ``step`` of ``total_steps`` (0-based)."""
    progress = step / max(1, total_steps)
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))
    if recipe.schedule == "onecycle":
        w = recipe.warmup_fraction
        if progress < w:
            return recipe.lr * (0.1 + 0.9 * progress / w)
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * (progress - w) / (1 - w)))
    raise ValueError(f"unknown schedule {recipe.schedule!r} (use 'onecycle' or 'cosine')")


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD with (nesterov) momentum and weight decay from the recipe."""
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                           weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)


def trained_seconds(history: list[dict]) -> float:
    """Wall seconds a training took: the sum of its epochs' ``seconds`` (each epoch's training and
    validation), across every process that trained a part of it (``fit`` restores the history of
    an interrupted run), not the time of the process that finished it."""
    return float(sum(row["seconds"] for row in history))


def fit(model: nn.Module, splits: CifarSplits, recipe: Recipe, device: torch.device | str,
        loss_fn: LossFn | None = None, after_step: Callable[[], None] | None = None,
        eval_split: str | None = "val", progress: bool = True, desc: str = "train",
        params=None, max_steps: int | None = None,
        on_step: Callable[[EagerStep], bool | None] | None = None, resume: Path | None = None,
        resume_key: dict | None = None, keep_state: bool = False) -> list[dict]:
    """Train ``model`` in place on ``splits`` (already on ``device``) and return per-epoch history.

    ``loss_fn(model, x, y) -> (logits [B,C], scalar loss)`` defaults to cross-entropy;
    ``after_step()`` runs after every optimizer step (e.g. to re-apply pruning masks);
    ``params`` defaults to every parameter with ``requires_grad``; ``max_steps`` stops early
    (benchmarks) without changing the schedule, as does ``on_step(runner)`` returning True: it is
    called after every step with the step runner, whose ``steady`` says whether the step has
    reached the form it keeps (a graphed step once captured), so a benchmark times only those. History rows hold epoch,
    train_loss, train_acc (%), val top-1 (%, when ``eval_split``), lr and seconds.

    ``recipe.step`` picks how a step executes (``common.train_step``): 'auto' records it once as
    a CUDA graph on CUDA and runs it eagerly elsewhere. Nothing inside an epoch reads a tensor
    back on the host: the loss and accuracy sums stay on the device until the epoch ends.

    ``resume``: a state file (``common.resume``) written at every epoch end; a training that
    finds its own there continues after its last finished epoch, bit-identical to an
    uninterrupted run on the same machine. Its own: the state's key (``common.cache``) is
    ``resume_key`` (the caller's key of what it trains: settings, code, models it learns from)
    plus the recipe, ``desc``, the splits' key and the sha256 of the weights ``model`` starts from.
    The file is removed when fit returns, unless ``keep_state`` (a caller that caches the model
    removes it once the checkpoint is written).
    """
    device = torch.device(device)
    torch.manual_seed(recipe.seed)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    resume = resume if max_steps is None else None
    key = resume and _resume_key(resume_key, model, splits, recipe, desc, params)   # the weights it starts from
    loss_fn = loss_fn or cross_entropy_loss(recipe.label_smoothing)
    use_bf16 = recipe.bf16 and fast_bf16_available(device)
    aug_gen = torch.Generator(device=device).manual_seed(recipe.seed)
    shuffle_gen = torch.Generator().manual_seed(recipe.seed)
    transform = BatchTransform(splits.name, augment=True, jitter=recipe.color_jitter,
                               generator=aug_gen, channels_last=recipe.channels_last)
    images, labels = splits.train_images, splits.train_labels
    full_batches = len(images) >= recipe.batch_size
    mode = resolve_step_mode(recipe.step, device, recipe.compile) if full_batches else "eager"
    if mode == "graphed":
        runner = GraphedStep(model, loss_fn, params, recipe, device, use_bf16)
    else:
        step_model = torch.compile(model) if recipe.compile else model
        runner = EagerStep(step_model, loss_fn, make_optimizer(params, recipe), device, use_bf16)
    steps_per_epoch = max(1, len(images) // recipe.batch_size)
    total_steps, step, history, lr = recipe.epochs * steps_per_epoch, 0, [], recipe.lr
    generators = {"augment": aug_gen, "shuffle": shuffle_gen}
    board = tensorboard_writer(desc)   # None unless --tensorboard
    state = load_state(resume, key, desc) if resume is not None else None
    if state is not None:
        restore_state(state, model, runner.optimizer, generators)
        step, history = state["step"], state["history"]
        print(f"[resume] {desc}: continuing after epoch {state['epoch']}/{recipe.epochs} ({resume})", flush=True)
    for epoch in range(len(history) + 1, recipe.epochs + 1):
        model.train()
        start = time.perf_counter()
        runner.reset_sums()
        seen = 0
        batches = iterate_batches(images, labels, recipe.batch_size, transform, shuffle=True,
                                  generator=shuffle_gen, drop_last=full_batches)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"{desc} {epoch}/{recipe.epochs}",
                   disable=not progress, leave=False, mininterval=2.0)
        for x, y in bar:
            if max_steps is not None and step >= max_steps:
                break
            lr = lr_at(step, total_steps, recipe)
            runner(x, y, lr)
            if after_step is not None:
                after_step()
            step += 1
            seen += len(y)
            if on_step is not None and on_step(runner):
                max_steps = step
        row = {"epoch": epoch, "train_loss": (runner.loss_sum / max(1, seen)).item(),
               "train_acc": 100.0 * runner.correct.item() / max(1, seen), "lr": lr}
        if eval_split:
            eval_images, eval_labels = splits.split(eval_split)
            row[f"{eval_split}_top1_acc"] = evaluate(model, eval_images, eval_labels, splits.name)["top1_acc"]
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        log_epoch(board, row)
        print(f"[{desc}] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                        for k, v in row.items()), flush=True)
        if resume is not None and epoch < recipe.epochs:
            save_state(resume, key, model, runner.optimizer, epoch, step, history, generators)
    if resume is not None and not keep_state:
        resume.unlink(missing_ok=True)
    if board is not None:
        board.close()
    return history


def _resume_key(caller_key: dict | None, model: nn.Module, splits: CifarSplits, recipe: Recipe, desc: str,
                params: list) -> dict:
    """The key of a training's resume state: the caller's key plus what ``fit`` itself knows."""
    base = caller_key or artefact_key({}, splits.key)
    fit_settings = {"recipe": recipe.cache_key(), "desc": desc, "trainable_params": sum(p.numel() for p in params)}
    return artefact_key({**base["settings"], "fit": fit_settings}, splits.key,
                        {**base["inputs"], START: weights_sha256(model)}, base["code"])


def module_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (CPU for a module with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def observers_frozen(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every fake-quantizer of ``model`` that records ranges (PT2E QAT graphs:
    modules with an ``observer_enabled`` flag) keeps its ranges fixed; the flags are restored after.
    Evaluation runs inside it, so validation or test images never move a QAT model's ranges."""
    flags = [(m, m.observer_enabled.clone()) for m in model.modules()
             if isinstance(getattr(m, "observer_enabled", None), torch.Tensor)]
    try:
        for m, _ in flags:
            m.observer_enabled.zero_()
        yield model
    finally:
        for m, flag in flags:
            m.observer_enabled.copy_(flag)


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor, dataset: str, batch_size: int = 1000,
                   jitter_generator: torch.Generator | None = None) -> torch.Tensor:
    """fp32 logits [N,C] on ``images``' device for uint8 images [N,3,32,32] (no augmentation;
    optional colour jitter), in eval mode with any fake-quant observers frozen."""
    model.eval()
    transform = BatchTransform(dataset, jitter=jitter_generator is not None,
                               generator=jitter_generator)
    with observers_frozen(model):
        chunks = [model(transform(images[i:i + batch_size])).float()
                  for i in range(0, len(images), batch_size)]
    return torch.cat(chunks)


def accuracy_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Top-1 and top-5 accuracy in percent (top-k capped at the number of classes)."""
    k = min(5, logits.shape[1])
    topk = logits.topk(k, dim=1).indices
    hits = topk == labels[:, None]
    n = len(labels)  # counts, not float means: 5868 of 10000 is exactly 58.68
    return {"top1_acc": 100.0 * int(hits[:, 0].sum()) / n, "top5_acc": 100.0 * int(hits.any(1).sum()) / n}


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, dataset: str,
             batch_size: int = 1000) -> dict:
    """Top-1/top-5 accuracy (%) of ``model`` on uint8 images [N,3,32,32] and labels [N], in fp32."""
    return accuracy_from_logits(predict_logits(model, images, dataset, batch_size), labels)
