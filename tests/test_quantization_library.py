"""Activation fake-quant, real quantized files, PT2E QAT and the mixed-precision allocator."""

import copy

import pytest
import torch
from torch import nn

from common.models import build_model
from quantization.activations import ActFakeQuant, ActSpec, act_quantizers, calibrate_activations
from quantization.fake_quant import Scheme, apply_scheme, quantizable_layers, uniform_scheme
from quantization.mixed_precision import (allocate_bits, edges_high_bits, input_second_moments,
                                          weight_bits_fn)
from quantization.quantizers import QuantSpec, quantize_dequantize
from quantization.storage import decode, encode, load_weight_quantized, model_bits, save_weight_quantized


def calibrated(spec, *batches):
    q = ActFakeQuant(spec)
    q.start_calibration()
    for b in batches:
        q(b)
    q.finish_calibration()
    return q


def test_activation_quantizer_uses_an_unsigned_grid_after_relu():
    x = torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 3.0
    q = calibrated(ActSpec(4), x)
    assert not bool(q.signed) and q.clip.item() == pytest.approx(float(x.max()))
    out = q(x)
    assert len(torch.unique(out)) <= 16 and out.min() >= 0
    assert bool(((out - x).abs() <= q.clip / 15 / 2 + 1e-6).all())   # half a step of clip / (2^4 - 1)


def test_signed_inputs_get_a_symmetric_grid_and_percentile_clipping_clips():
    x = torch.randn(20000, generator=torch.Generator().manual_seed(1))
    x[0] = 50.0
    plain, clipped = calibrated(ActSpec(8), x), calibrated(ActSpec(8, clip_percentile=99.9), x)
    assert bool(plain.signed) and plain.clip.item() == pytest.approx(50.0)
    assert 2.5 < clipped.clip.item() < 4.5                              # ~p99.9 of |N(0,1)|
    assert clipped(x)[0].item() == pytest.approx(clipped.clip.item())   # the outlier is clipped
    bulk_error = lambda q: (q(x) - x)[1:].pow(2).mean()
    assert bulk_error(clipped) < bulk_error(plain) / 50


def test_activation_gradients_pass_inside_the_range_and_stop_outside():
    q = calibrated(ActSpec(4), torch.tensor([0.0, 1.0]))
    x = torch.tensor([0.26, 0.5, 1.7, -0.3], requires_grad=True)
    q(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_uncalibrated_activation_quantizer_refuses_to_run():
    with pytest.raises(RuntimeError, match="calibrat"):
        ActFakeQuant(ActSpec(4))(torch.ones(3))
    with pytest.raises(ValueError):
        ActSpec(4, dtype="nf")


def test_scheme_with_activations_needs_calibration_and_quantizes_inputs():
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125).eval()
    x = torch.randn(8, 3, 32, 32)
    with pytest.raises(ValueError, match="calibration"):
        apply_scheme(build_model("vgg11", 10, 0.125), uniform_scheme(model, None, ActSpec(4)))
    apply_scheme(model, uniform_scheme(model, QuantSpec(8), ActSpec(8)), [x])
    quantizers = act_quantizers(model)
    assert set(quantizers) == set(quantizable_layers(model))
    assert bool(quantizers["stages.0.0.0"].signed) and not bool(quantizers["stages.1.0.0"].signed)
    seen = {}
    model.stages[1][0][0].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    model(x)
    step = quantizers["stages.1.0.0"].clip / 255
    codes = seen["x"] / step
    assert torch.allclose(codes, codes.round(), atol=1e-3)    # the conv saw values on the int8 grid


def test_quantized_file_decodes_to_the_evaluated_weights(tmp_path):
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125)
    config = {"stages.0.0.0": QuantSpec(16, dtype="float16"), "stages.1.0.0": QuantSpec(3, 32),
              "stages.2.0.0": QuantSpec(4, dtype="nf"), "classifier.3": QuantSpec(2)}
    size = save_weight_quantized(model, config, tmp_path / "q.pt")
    state = load_weight_quantized(tmp_path / "q.pt")
    layers = quantizable_layers(model)
    for name, spec in config.items():
        assert torch.allclose(state[f"{name}.weight"], quantize_dequantize(layers[name].weight.detach(), spec),
                              atol=1e-6 if not spec.is_float else 1e-3)
    assert torch.allclose(state["stages.3.0.0.weight"], model.stages[3][0][0].weight.detach().half().float())
    assert size == (tmp_path / "q.pt").stat().st_size
    # the file is within a small header overhead of the counted bits
    assert model_bits(model, config) / 8 < size < model_bits(model, config) / 8 + 40_000
    assert set(decode(encode(model, config))) == {k for k in model.state_dict() if "num_batches" not in k}


def test_sparse_file_stores_only_non_zero_codes(tmp_path):
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.25)
    layers = quantizable_layers(model)
    with torch.no_grad():
        for layer in layers.values():   # 70% zeros, as after unstructured pruning
            layer.weight.mul_((torch.rand_like(layer.weight) > 0.7).float())
    config = {name: QuantSpec(8) for name in layers}
    dense = save_weight_quantized(model, config, tmp_path / "dense.pt")
    sparse = save_weight_quantized(model, config, tmp_path / "sparse.pt", sparse=True)
    state = load_weight_quantized(tmp_path / "sparse.pt")
    for name, spec in config.items():     # the same weights come back, zeros included
        assert torch.equal(state[f"{name}.weight"], load_weight_quantized(tmp_path / "dense.pt")[f"{name}.weight"])
        assert (state[f"{name}.weight"][layers[name].weight == 0] == 0).all()
    weights = sum(layer.weight.numel() for layer in layers.values())
    # 8 bits per non-zero (~30%) + 1 bit per weight instead of 8 bits per weight
    assert dense - sparse == pytest.approx(weights * (1 - 0.3 - 1 / 8), rel=0.05)


def test_low_bit_files_are_smaller():
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.25)
    bits = {k: model_bits(model, {n: QuantSpec(k) for n in quantizable_layers(model)}) for k in (2, 4, 8)}
    assert bits[2] < bits[4] < bits[8] < model_bits(model, {})


def test_allocator_gives_bits_where_they_buy_the_most():
    # two layers of 100 weights; layer a is 100x more sensitive per unit of error
    errors = {b: 4.0 ** -b for b in (2, 4, 8)}
    sens = {"a": {b: 100 * e for b, e in errors.items()}, "b": dict(errors)}
    cost = lambda name, b: 100 * b
    assert allocate_bits(sens, cost, budget_bits=1200) == {"a": 8, "b": 4}
    assert allocate_bits(sens, cost, budget_bits=600) == {"a": 4, "b": 2}
    assert allocate_bits(sens, cost, budget_bits=599) == {"a": 2, "b": 2}
    with pytest.raises(ValueError, match="budget"):
        allocate_bits(sens, cost, budget_bits=399)


def test_edges_rule_and_weight_bits():
    model = build_model("vgg11", 10, 0.125)
    bits = edges_high_bits(model, 3)
    assert bits["stages.0.0.0"] == 16 and bits["classifier.3"] == 16
    assert {b for n, b in bits.items() if n not in ("stages.0.0.0", "classifier.3")} == {3}
    assert weight_bits_fn(model)("classifier.3", 16) == 16 * 10 * 64


def test_input_second_moments_are_means_of_squares():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 2.0]])
    assert input_second_moments(model, [x]) == {"1": pytest.approx((1 + 4 + 9 + 16 + 4) / 8)}


def test_pt2e_qat_trains_and_converts_to_an_int8_model_close_to_fp32():
    from quantization.pt2e import convert_int8, prepare_int8_qat
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.25)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    model.train()(x)  # populate BatchNorm statistics
    reference = model.eval()(x)
    prepared = prepare_int8_qat(model, x)
    opt = torch.optim.SGD(prepared.parameters(), lr=1e-3)
    prepared.train()
    torch.nn.functional.cross_entropy(prepared(x), y).backward()
    opt.step()
    converted = convert_int8(prepared, model, x)
    out = converted(x[:5])                           # another batch size: the batch dim is dynamic
    assert torch.nn.functional.cosine_similarity(out.flatten(), reference[:5].flatten(), dim=0) > 0.95
    assert any("quantize_per_tensor" in str(n.target) for n in converted.graph.nodes)


def test_calibration_batches_set_the_clip_from_the_data():
    model = nn.Sequential(nn.Linear(3, 3))
    apply_scheme(model, Scheme({}, {"0": ActSpec(8)}), [torch.full((2, 3), 2.0), torch.full((2, 3), -5.0)])
    q = act_quantizers(model)["0"]
    assert q.clip.item() == pytest.approx(5.0) and bool(q.signed)
    calibrate_activations(model, [torch.full((2, 3), 1.0)])
    assert q.clip.item() == pytest.approx(1.0)


def test_evaluating_a_qat_graph_leaves_its_observers_unchanged():
    """Evaluation (here: on 'test' images far outside the training range) must not move the
    ranges that convert_int8 bakes into the reported model."""
    from common.training import evaluate
    from quantization.pt2e import prepare_int8_qat
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125)
    x = torch.randn(8, 3, 32, 32)
    prepared = prepare_int8_qat(model, x)
    prepared.train()                                 # (the patched .train() returns None)
    prepared(x)                                      # training observes: ranges set on train images
    before = {k: v.clone() for k, v in prepared.state_dict().items()}
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    evaluate(prepared, images, torch.zeros(12, dtype=torch.long), "cifar10")
    after = prepared.state_dict()
    # (the exported graph bumps BatchNorm's unused num_batches_tracked counter even in eval mode)
    changed = [k for k in before if not torch.equal(before[k], after[k]) and "num_batches_tracked" not in k]
    assert changed == []
    assert any("activation_post_process" in k and "min_val" in k for k in before)
    flags = [m.observer_enabled.item() for m in prepared.modules() if hasattr(m, "observer_enabled")]
    assert flags and all(f == 1 for f in flags)      # training still observes afterwards


def test_a_qat_graph_rebuilt_on_the_cpu_converts_to_the_same_int8_model():
    """A GPU run trains the QAT graph on the GPU and converts it on the CPU (the x86 backend is
    CPU-only) through rebuild_on_cpu; here the rebuild is exercised from a CPU graph."""
    from quantization.pt2e import convert_int8, prepare_int8_qat, rebuild_on_cpu
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    prepared = prepare_int8_qat(copy.deepcopy(model), x)
    prepared.train()
    opt = torch.optim.SGD(prepared.parameters(), lr=0.05)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(prepared(x), y).backward()
        opt.step()
    rebuilt = rebuild_on_cpu(prepared, model, x)
    direct, via_rebuild = convert_int8(prepared, model, x), convert_int8(rebuilt, model, x)
    assert torch.equal(direct(x), via_rebuild(x))
