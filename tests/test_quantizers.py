"""k-bit quantizers on torchao's primitives, int4 packing, straight-through gradients, Hutchinson."""

import pytest
import torch

from quantization.hessian import hutchinson_trace
from quantization.quantizers import (QuantSpec, dequantize_weight, fake_quantize, pack_int4,
                                     quantize_dequantize, quantize_weight, unpack_int4)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("group_size", [None, 9])
def test_round_trip_error_is_at_most_half_a_step(bits, group_size):
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(bits))  # conv weight
    spec = QuantSpec(bits, group_size)
    codes, scale = quantize_weight(w, spec)
    assert codes.shape == w.shape and codes.min() >= spec.qmin and codes.max() <= spec.qmax
    assert scale.shape == (8, 1 if group_size is None else 36 // group_size)
    w_hat = dequantize_weight(codes, scale, spec)
    step = scale.repeat_interleave(w[0].numel() // scale.shape[1], dim=1).view_as(w)
    assert bool(((w_hat - w).abs() <= step / 2 + 1e-6).all())
    assert len(torch.unique(codes)) <= 2 ** bits


def test_group_size_must_divide_the_inputs():
    with pytest.raises(ValueError, match="does not divide"):
        quantize_weight(torch.randn(4, 10), QuantSpec(4, group_size=16))
    with pytest.raises(ValueError, match="2..8"):
        QuantSpec(1)


def test_smaller_groups_and_more_bits_lower_the_error():
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(0))
    w[:, 0] *= 20  # an outlier input column: per-channel scales suffer, groups contain it
    err = lambda spec: (quantize_dequantize(w, spec) - w).pow(2).mean().item()
    assert err(QuantSpec(4, 16)) < err(QuantSpec(4, None))
    assert err(QuantSpec(8)) < err(QuantSpec(6)) < err(QuantSpec(4)) < err(QuantSpec(2))


def test_int4_pack_round_trip_and_size():
    codes = torch.randint(-8, 8, (7, 5), dtype=torch.int8, generator=torch.Generator().manual_seed(0))
    packed = pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.numel() == 18
    assert torch.equal(unpack_int4(packed, codes.numel()).view(7, 5), codes)
    assert torch.equal(pack_int4(torch.tensor([-1, 2], dtype=torch.int8)), torch.tensor([0x2F], dtype=torch.uint8))
    with pytest.raises(ValueError):
        pack_int4(torch.tensor([8]))


def test_fake_quantize_passes_gradients_straight_through():
    w = torch.randn(6, 12, requires_grad=True)
    out = fake_quantize(w, QuantSpec(3))
    assert torch.allclose(out, quantize_dequantize(w.detach(), QuantSpec(3)))
    (out * torch.arange(72.0).view(6, 12)).sum().backward()
    assert torch.equal(w.grad, torch.arange(72.0).view(6, 12))


def test_hutchinson_matches_the_exact_trace_of_a_quadratic():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g)
    a = m @ m.T + torch.eye(6)            # Hessian of 0.5 x^T A x is A
    b = torch.diag(torch.arange(1.0, 5.0))
    x = torch.randn(6, requires_grad=True)
    y = torch.randn(4, requires_grad=True)
    loss = 0.5 * x @ a @ x + 0.5 * y @ b @ y + (x[:4] * y).sum()  # the cross term has zero trace
    est = hutchinson_trace(loss, [x, y], samples=2000, generator=g)
    assert est[0] == pytest.approx(torch.trace(a).item(), rel=0.1)
    assert est[1] == pytest.approx(10.0, rel=0.1)


def test_pt2e_int8_output_is_close_to_fp32_on_a_small_vgg():
    from common.models import build_model
    from quantization.pt2e import quantize_int8_pt2e
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.25).eval()
    x = torch.randn(16, 3, 32, 32)
    reference = model(x)
    quantized = quantize_int8_pt2e(model, x, [torch.randn(16, 3, 32, 32) for _ in range(4)] + [x])
    out = quantized(x)
    assert out.shape == reference.shape
    assert torch.nn.functional.cosine_similarity(out.flatten(), reference.flatten(), dim=0) > 0.99
    assert (out - reference).abs().max() < 0.1 * reference.abs().max()
    assert not torch.equal(out, reference)  # really quantized, not a pass-through
    ops = {str(n.target) for n in quantized.graph.nodes}
    assert any("quantize_per_tensor" in op for op in ops) and any("quantize_per_channel" in op or
                                                                  "dequantize_per_channel" in op for op in ops)


def test_weight_fake_quant_config_trains_and_bakes_onto_the_grid():
    from common.models import build_model
    from quantization.fake_quant import apply_weight_quant, bake, uniform_config
    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.125)
    plain_keys = set(model.state_dict())
    config = uniform_config(model, QuantSpec(4), keep=("stages.0.0.0", "classifier.3"))
    assert len(config) == 8 and "stages.0.0.0" not in config
    apply_weight_quant(model, config)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    before = model.stages[1][0][0].parametrizations.weight.original.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert not torch.equal(model.stages[1][0][0].parametrizations.weight.original, before)  # fp32 weights learn
    bake(model)
    assert set(model.state_dict()) == plain_keys
    w = model.stages[1][0][0].weight.detach()
    assert all(len(torch.unique(row)) <= 16 for row in w.reshape(w.shape[0], -1))
    first = model.stages[0][0][0].weight.detach()
    assert max(len(torch.unique(row)) for row in first.reshape(first.shape[0], -1)) > 16  # kept in fp32
