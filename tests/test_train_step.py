"""The graphed training step (recorded once as a CUDA graph on CUDA) reaches the eager step's
parameters. On a CPU the same static-buffer step -- fused SGD with the learning rate as a device
tensor, loss and accuracy sums inside the step -- runs without the graph, so these tests check
everything but the recording itself."""

import pytest
import torch

from common.data import load_splits
from common.models import build_model
from common.train_step import GraphedStep, resolve_step_mode
from common.training import Recipe, fit
from distillation.methods import METHODS, build_distiller
from step_helpers import FailingCapture, SimulatedCapture

# fused SGD rounds differently from the single-tensor loop: after two epochs of a width-0.125
# VGG-11 the parameters differ by about 1e-6 at most; a wrong learning rate, a missed step or a
# stale batch moves them by 1e-3 or more
TOLERANCE = dict(rtol=1e-4, atol=2e-5)


def trained(splits, mode: str, recipe: Recipe, teacher=None, method: str = "kd"):
    torch.manual_seed(0)
    student = build_model("vgg11", splits.num_classes, 0.125)
    if teacher is None:
        history = fit(student, splits, recipe.but(step=mode), "cpu", progress=False)
    else:
        steps = recipe.epochs * (len(splits.train_images) // recipe.batch_size)
        extra = {"train_size": len(splits.train_images)} if method == "crd" else {}
        distiller = build_distiller(method, student, teacher, steps, **extra)
        history = fit(distiller, splits, recipe.but(step=mode), "cpu", loss_fn=distiller.loss_fn(),
                      params=distiller.trainable_parameters(), progress=False)
    return student, history


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, **TOLERANCE, msg=lambda m: f"{name}: {m}")


@pytest.fixture(scope="module")
def splits(cifar_root):
    return load_splits("cifar10", cifar_root, val_images=100, train_images=384)


def test_graphed_step_reaches_the_eager_parameters(splits):
    recipe = Recipe(epochs=2, batch_size=64, bf16=False)   # onecycle: the lr changes every step
    eager, eager_history = trained(splits, "eager", recipe)
    graphed, graphed_history = trained(splits, "graphed", recipe)
    assert_same_state(eager, graphed)
    for e, g in zip(eager_history, graphed_history, strict=True):
        assert g["train_loss"] == pytest.approx(e["train_loss"], rel=1e-4)
        assert g["train_acc"] == pytest.approx(e["train_acc"], abs=100 / 384 + 1e-9)
        assert g["lr"] == e["lr"]


def fused_sgd(params, recipe):
    """The eager step's optimizer with the fused update the graphed step uses."""
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                           nesterov=recipe.nesterov, fused=True)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_graphed_step_trains_every_distiller_like_the_eager_step(splits, method, monkeypatch):
    """Against the eager step with the same fused SGD the graphed step is bit-identical for every
    distiller. (Against the default single-tensor SGD the rounding difference grows with the
    training's sensitivity: for label smoothing on an AMX CPU it reached 8e-5 in 6 steps, while
    the fused and graphed runs stayed equal to the bit.)"""
    torch.manual_seed(1)
    teacher = build_model("vgg11", splits.num_classes, 0.125).eval()
    recipe = Recipe(epochs=1, batch_size=64, bf16=False)
    graphed, _ = trained(splits, "graphed", recipe, teacher, method)
    monkeypatch.setattr("common.training.make_optimizer", fused_sgd)
    eager, _ = trained(splits, "eager", recipe, teacher, method)
    for (name, x), (_, y) in zip(eager.state_dict().items(), graphed.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


def test_step_mode_is_graphed_on_cuda_only_by_default():
    assert resolve_step_mode("auto", torch.device("cuda")) == "graphed"
    assert resolve_step_mode("auto", "cuda:1") == "graphed"
    assert resolve_step_mode("auto", "cpu") == "eager"
    assert resolve_step_mode("graphed", "cpu") == "graphed"
    with pytest.raises(ValueError, match="unknown training step"):
        resolve_step_mode("fast", "cpu")


def test_graphed_step_refuses_a_batch_of_another_shape():
    model = torch.nn.Linear(4, 3)
    step = GraphedStep(model, lambda m, x, y: (m(x), torch.nn.functional.cross_entropy(m(x), y)),
                       list(model.parameters()), Recipe(epochs=1), "cpu", use_bf16=False)
    step(torch.randn(8, 4), torch.zeros(8, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="equal batches"):
        step(torch.randn(5, 4), torch.zeros(5, dtype=torch.long), 0.1)


def test_how_a_step_runs_is_not_part_of_a_checkpoints_recipe():
    """Checkpoints trained eagerly stay valid when the step is graphed (and the reverse)."""
    recipe = Recipe(epochs=3)
    assert recipe.but(step="graphed", compile=True).cache_key() == recipe.cache_key()
    assert "step" not in recipe.cache_key() and "compile" not in recipe.cache_key()
    assert recipe.but(lr=0.05).cache_key() != recipe.cache_key()


@pytest.mark.parametrize("step_class", [SimulatedCapture, FailingCapture])
def test_captured_and_failed_captures_train_like_the_eager_step(splits, monkeypatch, capsys, step_class):
    """A failed capture puts back the state from before it and goes on eagerly (the bug: the
    fallback stepped on from whatever the failed capture had left)."""
    recipe = Recipe(epochs=2, batch_size=64, bf16=False)
    eager, eager_history = trained(splits, "eager", recipe)
    monkeypatch.setattr("common.training.GraphedStep", step_class)
    graphed, graphed_history = trained(splits, "graphed", recipe)
    assert_same_state(eager, graphed)
    assert graphed_history[-1]["train_loss"] == pytest.approx(eager_history[-1]["train_loss"], rel=1e-4)
    failed = "CUDA graph capture failed (operation not permitted when stream is capturing)" in capsys.readouterr().out
    assert failed == step_class.fail


def test_compile_with_the_graphed_step_is_refused_and_auto_trains_it_eagerly():
    assert resolve_step_mode("auto", "cuda", compile=True) == "eager"
    with pytest.raises(ValueError, match="--compile cannot be combined with --train-step graphed"):
        resolve_step_mode("graphed", "cuda", compile=True)


def test_the_benchmark_times_only_steps_replayed_after_the_capture(cifar_root, monkeypatch):
    """The bug: the plan's benchmark (2 warm-up steps) timed an eager step, the capture and 3
    replays; now the timed window starts once the step is steady, whatever --warmup is."""
    from study import benchmark
    from common.cli import RunContext
    from common.profiles import PROFILES

    log = []
    monkeypatch.setattr(SimulatedCapture, "log", log)
    monkeypatch.setattr("common.training.GraphedStep", SimulatedCapture)
    monkeypatch.setattr(benchmark, "synchronize", lambda device: log.append(("clock", None)))
    ctx = RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=cifar_root,
                     device=torch.device("cpu"), progress=False, train_step="graphed")
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125)
    benchmark.timed_fit_images_per_second(ctx, model, Recipe(epochs=1, batch_size=32, bf16=False, step="graphed"),
                                          steps=5, warmup=2)
    clocks = [i for i, (kind, _) in enumerate(log) if kind == "clock"]
    timed = log[clocks[0] + 1:clocks[1]]
    assert len(timed) == 5 and all(replayed for _, replayed in timed)


class FakeCudaCapture:
    """torch.cuda's streams and graphs, as a capture uses them, on the CPU: which stream is
    current, and what was done to the graph. Its graph's capture is invalidated: ending it raises,
    as CUDA does after a host read inside the captured region."""

    def __init__(self, monkeypatch):
        self.current, self.calls = "caller", []
        fake = self

        class Stream:
            def __init__(self, device=None, name="side"):
                self.name = name

            def wait_stream(self, other):
                pass

        class Graph:
            def capture_begin(self, *args, **kwargs):
                fake.calls.append("begin")

            def capture_end(self):
                fake.calls.append("end")
                raise RuntimeError("operation failed due to a previous error during capture")

            def reset(self):
                fake.calls.append("reset")

        class stream:   # a class, not a generator: nothing restores the stream but __exit__
            def __init__(self, s):
                self.name = s.name

            def __enter__(self):
                self.previous, fake.current = fake.current, self.name

            def __exit__(self, *exc):
                fake.current = self.previous

        for name, value in {"Stream": Stream, "CUDAGraph": Graph, "stream": stream,
                            "current_stream": lambda device=None: Stream(name=fake.current),
                            "synchronize": lambda device=None: None, "empty_cache": lambda: None}.items():
            monkeypatch.setattr(torch.cuda, name, value)


def test_a_failed_capture_leaves_the_callers_stream_current_and_releases_the_graph(monkeypatch):
    """The bug: ``torch.cuda.graph.__exit__`` ends the capture before leaving the side stream;
    when ending raises, the step trained on, eagerly, on the capture's side stream."""
    def host_read(model, x, y):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    model = build_model("vgg11", 10, 0.125)
    step = GraphedStep(model, host_read, list(model.parameters()), Recipe(epochs=1), "cpu", False)
    step.static_x, step.static_y = torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long)
    cuda = FakeCudaCapture(monkeypatch)
    with pytest.raises(RuntimeError):
        step._record_graph()
    assert cuda.current == "caller"
    assert cuda.calls == ["begin", "end", "reset"]
