"""The facts the stage code declares as data (for ``study``'s cost plan) are what it really does.

Each test runs the real function on a tiny smoke-width VGG-11 with spies on the calls that make
a calibration pass (``calibrate_activations``, ``quantize_int8_pt2e``), on the evaluations and on
the trainings (``fit``), and checks them against the declared constants.
"""

import pytest
import torch
from torch.nn.utils import parametrize

import combined.pipelines as pipelines
import pruning.study
import quantization.fake_quant
import quantization.formats as formats
import quantization.mixed_precision as mixed_precision
import quantization.pt2e
import quantization.study
from common.cli import RunContext
from common.models import build_model
from common.profiles import PROFILES
from pruning.methods import prunable_layers
from quantization.activations import act_quantizers
from quantization.fake_quant import quantizable_layers


@pytest.fixture(scope="module")
def ctx(cifar_root):
    return RunContext(profile=PROFILES["smoke"], dataset="cifar10", data_dir=cifar_root,
                      device=torch.device("cpu"), progress=False)


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return build_model("vgg11", 10, PROFILES["smoke"].width).eval()


def fake_quantizes_activations(model) -> bool:
    return bool(act_quantizers(model))


def training_kind(model, eval_split) -> str:
    """What a ``fit`` call trains, in the vocabulary of the declarations."""
    if isinstance(model, torch.fx.GraphModule):
        return "pt2e-qat"
    if fake_quantizes_activations(model) or any(parametrize.is_parametrized(m, "weight")
                                                for m in quantizable_layers(model).values()):
        return "fake-quant"
    return "finetune" if eval_split == "val" else "plain"   # the pruning fine-tune validates every epoch


@pytest.fixture
def calibrations(monkeypatch):
    """A list with one entry per calibration pass made while the test runs."""
    passes = []
    real_activations, real_pt2e = quantization.fake_quant.calibrate_activations, quantization.pt2e.quantize_int8_pt2e

    def activations(*args, **kwargs):
        passes.append("activations")
        return real_activations(*args, **kwargs)

    def pt2e(*args, **kwargs):
        passes.append("pt2e")
        return real_pt2e(*args, **kwargs)

    monkeypatch.setattr(quantization.fake_quant, "calibrate_activations", activations)
    for module in (quantization.pt2e, formats, pipelines):
        monkeypatch.setattr(module, "quantize_int8_pt2e", pt2e)
    return passes


def spy(monkeypatch, module, name, record):
    """Replace ``module.name`` by a wrapper that calls ``record(*args, **kwargs)`` first."""
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        record(*args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_ptq_rows_are_its_declared_rows(ctx, base, calibrations, isolated_outputs, monkeypatch):
    evaluated = []   # per row: (activations fake-quantized, calibration passes made so far)
    spy(monkeypatch, formats, "accuracy_columns",
        lambda model, _: evaluated.append((fake_quantizes_activations(model), len(calibrations))))
    rows = formats.ptq_rows(base, ctx, rounds=1)
    assert len(rows) == len(evaluated) == len(formats.PTQ_ROWS)
    assert [fake for fake, _ in evaluated] == [r.forward == "fake-quant" for r in formats.PTQ_ROWS]
    assert sum(not fake for fake, _ in evaluated) == len(formats.PTQ_PLAIN_ROWS)
    assert sum(fake for fake, _ in evaluated) == len(formats.PTQ_ACTIVATION_SCHEMES)
    per_row = [b - a for (_, a), (_, b) in zip([(None, 0)] + evaluated, evaluated)]
    assert per_row == [int(r.calibrates) for r in formats.PTQ_ROWS]
    assert len(calibrations) == formats.PTQ_CALIBRATIONS == 3
    # the fake-quant rows are the simulated_schemes entries of those names
    assert [r["scheme"] for r, (fake, _) in zip(rows, evaluated) if fake] == ["W8A8 (fake-quant check)", "W4A4"]
    assert set(formats.PTQ_ACTIVATION_SCHEMES) <= set(formats.simulated_schemes(base))


def test_real_kernel_rows_are_the_declared_configs(ctx, base, calibrations, isolated_outputs):
    rows = mixed_precision.real_kernel_rows(base, ctx, rounds=1)
    configs = mixed_precision.REAL_KERNEL_CONFIGS
    assert [(r["config"], r["kind"]) for r in rows] == [(c.config, c.kind) for c in configs]
    assert calibrations == ["pt2e"] * mixed_precision.INT8_CALIBRATIONS
    assert mixed_precision.INT8_CALIBRATIONS == sum(c.int8 for c in configs) == 2
    first, last = mixed_precision.edge_layers(base)
    layers = list(quantizable_layers(base))
    for r, c in zip(rows, configs):
        assert (int(r["int8_kernels"]) > 0) == c.int8      # the int8 configs ran int8 kernels (x86 CPU)
        bits = r["layer_bits"].split("-")
        assert len(bits) == len(layers)
        assert (bits[0], bits[-1]) == (("32", "32") if not c.int8 or c.first_last_fp32 else ("8", "8"))


def test_qat_curves_train_each_declared_format_in_order(ctx, base, calibrations, isolated_outputs, monkeypatch):
    trained = []
    spy(monkeypatch, formats, "qat_finetune", lambda model, *_, **__: trained.append(training_kind(model, None)))
    rows, curves = formats.qat_curves(base, ctx, epochs=1)
    assert list(dict.fromkeys(r["format"] for r in rows)) == list(formats.QAT_FORMATS)
    assert trained == list(formats.QAT_FORMATS.values())
    assert calibrations == ["activations", "pt2e"]      # int4's activation ranges, int8 PT2E PTQ


def test_pipeline_steps_do_what_they_declare(ctx, base, calibrations, isolated_outputs, monkeypatch):
    # the pruning step's ratio rule needs the pruning study's sweep: a uniform 70% stands in for it
    monkeypatch.setattr(pipelines, "get_baseline", lambda *_: (base, {}))
    monkeypatch.setattr(pipelines, "ratio_rule", lambda *_: (
        lambda target: ({name: target for name, _ in prunable_layers(base)}, 0.0), 0.0))
    trainings = []
    for module in (pruning.study, quantization.study):
        spy(monkeypatch, module, "fit", lambda model, *_, eval_split="val", **__:
            trainings.append(training_kind(model, eval_split)))
    seen = set()
    for name, (start, steps) in pipelines.PIPELINES.items():
        assert start.model in ("vgg11", pipelines.CHANNEL_PRUNED)
        model = base
        for index, step in enumerate(steps, start=1):
            assert step.kind in pipelines.STEP_KINDS and pipelines.STEP_KINDS[step.kind] is step
            trainings.clear()
            calibrations.clear()
            stage = step.apply(ctx, model, f"{name}_{index}")
            assert trainings == ([step.trains] if step.trains else []), step.kind
            assert len(calibrations) == int(step.calibrates), step.kind
            assert stage.simulated == step.reads_through_fake_quant, step.kind
            assert fake_quantizes_activations(stage.runner) == step.reads_through_fake_quant, step.kind
            seen.add(step.kind)
            model = stage.weights
    assert seen == set(pipelines.STEP_KINDS) == {"pruned", "int8_ptq", "int8_qat", "int4_ptq", "int4_qat"}


def test_pipeline_starts_name_the_plans_models():
    from study.throughput import CHANNEL_PRUNED   # the plan's name of the channel-pruned VGG-11

    assert pipelines.CHANNEL_PRUNED == CHANNEL_PRUNED
    assert {name: start.model for name, (start, _) in pipelines.PIPELINES.items()} == {
        "kd_prune_int8": "vgg11", "structured_int8_qat": CHANNEL_PRUNED, "kd_int4_qat": "vgg11"}
