"""One optimizer step of ``common.training.fit``: eager, or recorded once as a CUDA graph.

At batch 128 a VGG step is a few hundred small kernels; launched one by one from Python, a fast GPU
spends most of the step waiting for the host. ``GraphedStep`` records the whole step once --
forward and loss under bf16 autocast, backward, the SGD update (fused SGD, the learning rate a 0-d
tensor on the device), the running loss and accuracy sums -- as a CUDA graph (``torch.cuda.graph``,
PyTorch's whole-network capture) and replays it: per step the host copies the augmented batch into
the graph's input, writes the learning rate, and launches one graph. Augmentation (random crop,
flip, colour jitter with the run's generator) stays outside the graph, as do ``after_step`` hooks.

The recipe does not change: the same loss, batch, SGD with nesterov momentum and weight decay, the
same learning rate at every step. The first ``WARMUP_STEPS`` steps run eagerly (real steps, on a
side stream, as capture requires), then the step is captured. On a device without CUDA graphs the
same static-buffer step runs eagerly (``capture=False``), which is how the tests check on a CPU that
it reaches the parameters of ``EagerStep``.

Steps that cannot be captured -- a loss that reads a tensor on the host (``.item()``, ``if t:``),
such as the fake quantizers of QAT, which test their observer flags in Python -- must use
``EagerStep``; ``fit`` callers pick it with ``Recipe(step="eager")``. Should capture fail anyway,
the step says so in one line and keeps nothing the attempt made: ``capture_graph`` leaves the
caller's stream current and releases the half-made graph, the step synchronises the device, puts
back the parameters, momentum and sums from before the attempt, builds a fresh optimizer over them
on the current stream, and goes on eagerly.
A ``torch.compile``d model trains with the eager step (``resolve_step_mode``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from common.flags import STEP_MODES  # noqa: F401  (declared with the --train-step flag, without torch)
from common.timing import synchronize

WARMUP_STEPS = 3     # eager steps before capture (allocator, cuDNN and optimizer state settle)


def resolve_step_mode(mode: str, device: torch.device | str, compile: bool = False) -> str:
    """'eager' or 'graphed' for ``mode`` on ``device``: 'auto' is 'graphed' on CUDA, else 'eager'
    (on a CPU the eager step is the faster one: no launch overhead to remove). A
    ``torch.compile``d model (``compile``) trains eagerly: 'auto' picks 'eager' for it, and
    'graphed' with ``compile`` is refused (ValueError), since the graph records the model as it
    is and a compiled wrapper would be silently dropped."""
    if mode not in STEP_MODES:
        raise ValueError(f"unknown training step {mode!r}; choose one of {STEP_MODES}")
    if mode == "graphed" and compile:
        raise ValueError("--compile cannot be combined with --train-step graphed (the CUDA graph "
                         "records the uncompiled model); use one or the other")
    if mode == "auto":
        return "graphed" if torch.device(device).type == "cuda" and not compile else "eager"
    return mode


def fused_sgd(params, recipe, lr: torch.Tensor) -> torch.optim.SGD:
    """The graphed step's optimizer: fused SGD over ``params`` with the recipe's momentum, nesterov
    and weight decay, and ``lr`` (a 0-d float32 tensor on the parameters' device, written before
    every step) as its learning rate."""
    return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                           nesterov=recipe.nesterov, fused=True)


def capture_graph(record: Callable[[], None], device: torch.device) -> torch.cuda.CUDAGraph:
    """``record()`` recorded as a CUDA graph on a side stream of ``device`` (recording runs nothing).

    What ``torch.cuda.graph`` does, written out so that a failed capture cannot leave the side
    stream current: ``torch.cuda.graph.__exit__`` ends the capture before it leaves the stream
    context, and when ending raises (an invalidated capture) the context is never left. Here the
    capture is ended inside the stream context, so the caller's stream is current again however
    the capture ends; on failure the device is synchronised, the half-made graph reset (its
    private memory pool released) and the error raised (RuntimeError from CUDA)."""
    caller = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize(device)
    side.wait_stream(caller)
    try:
        with torch.cuda.stream(side):
            graph.capture_begin()
            try:
                record()
            except BaseException:
                with contextlib.suppress(RuntimeError):   # ends the invalidated capture; it raises
                    graph.capture_end()
                raise
            graph.capture_end()
    except BaseException:
        torch.cuda.synchronize(device)
        graph.reset()
        torch.cuda.empty_cache()
        raise
    caller.wait_stream(side)
    return graph


class EagerStep:
    """The plain step: set the learning rate, forward and loss under autocast, backward, SGD step.

    ``optimizer`` is built by the caller (``make_optimizer``); ``loss_fn(model, x, y) -> (logits
    [B,C], scalar loss)``. Calls take a batch x [B,3,H,W], labels y [B] and the learning rate
    (float); ``loss_sum`` (sum of per-batch mean loss times batch size) and ``correct`` (top-1
    hits) accumulate on the device without a host synchronisation.
    """

    def __init__(self, model: nn.Module, loss_fn, optimizer: torch.optim.Optimizer,
                 device: torch.device, use_bf16: bool):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.device, self.use_bf16 = torch.device(device), use_bf16
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.calls = 0

    @property
    def steady(self) -> bool:
        """Whether the next steps run as every later one will (the first step allocates the
        optimizer state): a benchmark times only steady steps."""
        return self.calls >= 1

    def reset_sums(self) -> None:
        """Zero ``loss_sum`` and ``correct`` (in place: a captured graph keeps their memory)."""
        self.loss_sum.zero_()
        self.correct.zero_()

    def _update(self, x: torch.Tensor, y: torch.Tensor, cache_casts: bool = True) -> None:
        """Forward and loss under autocast, backward, optimizer step, running sums; gradients
        must be None on entry. ``cache_casts``: autocast's weight-cast cache (a recorded graph
        must recompute the casts from the current weights on every replay, so it turns it off)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16,
                            cache_enabled=cache_casts):
            logits, loss = self.loss_fn(self.model, x, y)
        loss.backward()
        self.optimizer.step()
        self.loss_sum.add_(loss.detach() * len(y))
        self.correct.add_((logits.argmax(1) == y).sum())

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        self._update(x, y)
        self.calls += 1


class GraphedStep(EagerStep):
    """The same step on static buffers, recorded once as a CUDA graph and replayed.

    Builds its own fused SGD over ``params`` with the recipe's momentum, nesterov and weight decay
    and the learning rate as a 0-d float32 tensor on ``device`` (written before every step, never
    read back on the host). Every batch must have the shape of the first (``fit`` drops the last
    partial batch). ``capture=False`` replays the step eagerly instead (CPU, tests).
    """

    def __init__(self, model: nn.Module, loss_fn, params, recipe, device: torch.device,
                 use_bf16: bool, capture: bool = True, warmup_steps: int = WARMUP_STEPS):
        device = torch.device(device)
        self.lr = torch.tensor(float(recipe.lr), device=device)
        self.params, self.recipe = list(params), recipe
        super().__init__(model, loss_fn, fused_sgd(self.params, recipe, self.lr), device, use_bf16)
        self.capture = capture and device.type == "cuda"
        self.warmup_steps = warmup_steps
        self.steps = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_x: torch.Tensor | None = None
        self.static_y: torch.Tensor | None = None

    @property
    def steady(self) -> bool:
        """True once the step is captured and replayed (or, without capture, after the first
        eager step): the warm-up steps and the capture step are not steady."""
        if self.capture:
            return self.graph is not None
        return self.steps >= 1

    def _record(self) -> None:
        """The step on the static buffers (what the graph holds)."""
        self._update(self.static_x, self.static_y, cache_casts=False)

    def _eager(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._record()

    def _warm_up(self) -> None:
        """One eager step on a side stream, as capture requires of the steps before it."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._eager()
        torch.cuda.current_stream(self.device).wait_stream(side)

    def _record_graph(self):
        """The step recorded as a CUDA graph (``capture_graph``); raises RuntimeError when the step
        cannot be captured (e.g. it reads a tensor on the host)."""
        return capture_graph(self._record, self.device)

    def _state(self) -> dict:
        """Copies of everything a step changes: parameters, buffers, optimizer state (momentum),
        the running sums."""
        clone = lambda v: v.detach().clone() if isinstance(v, torch.Tensor) else v  # noqa: E731
        return {"model": {k: clone(v) for k, v in self.model.state_dict().items()},
                "optimizer": {p: {k: clone(v) for k, v in s.items()} for p, s in self.optimizer.state.items()},
                "sums": (self.loss_sum.clone(), self.correct.clone())}

    def _restore(self, state: dict) -> None:
        """Put back what ``_state`` copied (the learning-rate tensor stays the optimizer's)."""
        with torch.no_grad():
            for name, tensor in self.model.state_dict().items():
                tensor.copy_(state["model"][name])
        self.optimizer.state.clear()
        self.optimizer.state.update(state["optimizer"])
        self.loss_sum.copy_(state["sums"][0])
        self.correct.copy_(state["sums"][1])

    def _capture(self) -> None:
        """Record the step, then replay it once to take this step; should capture fail, fall back
        (``_fall_back``) and take this step and every later one eagerly."""
        before = self._state()
        self.optimizer.zero_grad(set_to_none=True)   # backward allocates grads in the graph's pool
        try:
            graph = self._record_graph()
        except RuntimeError as exc:    # a host read inside the step: go on without the graph
            self._fall_back(before, str(exc).splitlines()[0])
            return
        self.graph = graph
        graph.replay()

    def _fall_back(self, before: dict, reason: str) -> None:
        """After a failed capture keep nothing it made: say so in one line, synchronise the
        device, drop the gradients (allocated in the graph's pool), build a fresh fused SGD over
        the parameters on the current stream, put back parameters, buffers, momentum and sums as
        ``before`` (``_state``) holds them, release cached memory; the step then runs eagerly."""
        print(f"[train] CUDA graph capture failed ({reason}); training this model with the eager step",
              flush=True)
        synchronize(self.device)
        self.graph, self.capture = None, False
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer = fused_sgd(self.params, self.recipe, self.lr)
        self._restore(before)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self._eager()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        if self.static_x is None:
            self.static_x, self.static_y = x.clone(), y.clone()   # keeps x's channels_last strides
        else:
            if x.shape != self.static_x.shape:
                raise ValueError(f"a graphed step needs equal batches: got {tuple(x.shape)}, "
                                 f"recorded {tuple(self.static_x.shape)}")
            self.static_x.copy_(x)
            self.static_y.copy_(y)
        self.lr.fill_(lr)
        self.steps += 1
        self.calls = self.steps
        if self.graph is not None:
            self.graph.replay()
        elif not self.capture:
            self._eager()
        elif self.steps <= self.warmup_steps:
            self._warm_up()
        else:
            self._capture()
