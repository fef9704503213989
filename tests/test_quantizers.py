"""k-bit quantizers on torchao's primitives, int4 packing, straight-through gradients, Hutchinson."""

import pytest
import torch

from quantization.hessian import hutchinson_trace
from quantization.quantizers import (QuantSpec, codebook, dequantize_weight, fake_quantize,
                                     pack_codes, pack_int4, quantize_dequantize, quantize_weight,
                                     storage_bits, unpack_codes, unpack_int4)


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


def test_groups_that_do_not_divide_the_inputs_are_padded():
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(1))  # 27 inputs per channel
    spec = QuantSpec(4, group_size=16)
    codes, scale = quantize_weight(w, spec)
    assert codes.shape == w.shape and scale.shape == (4, 2)
    # the second group holds inputs 16..26 only: its scale is their absmax / qmax, rounded up to fp16
    expected = w.reshape(4, 27)[:, 16:].abs().amax(1) / 7
    assert bool((scale[:, 1] >= expected).all()) and torch.allclose(scale[:, 1], expected, rtol=2e-3)
    assert torch.equal(scale, scale.half().float())
    assert bool(((dequantize_weight(codes, scale, spec) - w).abs() <= 0.5 * scale.max() + 1e-6).all())


def test_invalid_specs_are_refused():
    for bad in (dict(bits=1), dict(bits=9), dict(bits=4, dtype="float16"), dict(bits=16, dtype="int"),
                dict(bits=4, dtype="fp5"), dict(bits=4, clip_percentile=40)):
        with pytest.raises(ValueError):
            QuantSpec(**bad)


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


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_codebooks_have_the_expected_levels(bits):
    nf = codebook("nf", bits)
    assert len(nf) == 2 ** bits and nf.max() == 1 and (nf == 0).sum() == 1 and nf.min() < 0
    assert bool((nf[1:] > nf[:-1]).all())
    pow2 = codebook("pow2", bits)
    assert len(pow2) == 2 ** bits - 1 and pow2.max() == 1 and (pow2 == 0).sum() == 1
    assert torch.equal(pow2, -pow2.flip(0))                    # symmetric
    positive = pow2[pow2 > 0]
    assert torch.allclose(positive[1:] / positive[:-1], torch.full((len(positive) - 1,), 2.0))
    assert len(codebook("int", bits, signed=False)) == 2 ** bits


def test_nf4_matches_the_published_normalfloat4_levels():
    # QLoRA's NF4 table (Dettmers et al. 2023, appendix E), rounded to 4 decimals
    published = [-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0,
                 0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.723, 1.0]
    assert torch.allclose(codebook("nf", 4), torch.tensor(published), atol=1e-4)


@pytest.mark.parametrize("dtype", ["nf", "pow2"])
def test_codebook_round_trip_picks_the_nearest_level(dtype):
    w = torch.randn(6, 40, generator=torch.Generator().manual_seed(2))
    spec = QuantSpec(3, group_size=8, dtype=dtype)
    codes, scale = quantize_weight(w, spec)
    w_hat = dequantize_weight(codes, scale, spec)
    candidates = codebook(dtype, 3)[None, None, :] * scale.repeat_interleave(8, dim=1)[..., None]
    best = (candidates - w[..., None]).abs().min(-1).values
    assert torch.allclose((w_hat - w).abs(), best, atol=1e-6)


def test_percentile_clipping_clips_the_outlier_and_refines_the_rest():
    w = torch.randn(1, 1000, generator=torch.Generator().manual_seed(3))
    w[0, 0] = 40.0
    plain, clipped = QuantSpec(4), QuantSpec(4, clip_percentile=99.0)
    err = lambda spec: (quantize_dequantize(w, spec) - w)[0, 1:].pow(2).mean()
    assert err(clipped) < err(plain) / 10                       # the bulk is resolved better
    assert quantize_dequantize(w, clipped)[0, 0] < 5            # the outlier is clipped


@pytest.mark.parametrize("bits", [2, 3, 5, 8])
@pytest.mark.parametrize("signed", [True, False])
def test_pack_codes_round_trip_and_size(bits, signed):
    g = torch.Generator().manual_seed(bits)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2 ** bits)
    codes = torch.randint(low, high, (13, 7), generator=g)
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-13 * 7 * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, codes.numel(), signed).view(13, 7).long(), codes)


def test_storage_bits_counts_codes_and_fp16_scales():
    assert storage_bits((64, 32, 3, 3), QuantSpec(4)) == 4 * 64 * 288 + 16 * 64
    assert storage_bits((64, 32, 3, 3), QuantSpec(3, group_size=32)) == 3 * 64 * 288 + 16 * 64 * 9
    assert storage_bits((10, 27), QuantSpec(2, group_size=16)) == 2 * 270 + 16 * 10 * 2
    assert storage_bits((10, 27), QuantSpec(16, dtype="bfloat16")) == 16 * 270


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_without_clipping_a_channel_keeps_its_extremes_and_equals_p100(bits):
    """The full range [-2^(b-1), qmax] clamped each channel's largest weight (int2: 1 -> 0.667)."""
    w = torch.linspace(-1, 1, 27).view(1, 3, 3, 3).repeat(2, 1, 1, 1) * torch.tensor([1.0, 0.37]).view(2, 1, 1, 1)
    plain = quantize_dequantize(w, QuantSpec(bits))
    rows = plain.reshape(2, -1)
    assert torch.allclose(rows.amax(1), w.reshape(2, -1).amax(1), rtol=2e-3)   # fp16 scale rounding only
    assert torch.allclose(rows.amin(1), w.reshape(2, -1).amin(1), rtol=2e-3)
    assert torch.equal(plain, quantize_dequantize(w, QuantSpec(bits, clip_percentile=100)))
    codes, _ = quantize_weight(w, QuantSpec(bits))
    assert codes.max() == 2 ** (bits - 1) - 1 and codes.min() == -(2 ** (bits - 1) - 1)


def test_percentile_clipping_leaves_the_padding_out():
    """A last group of 3 real weights padded with 13 zeros: its p75 is that of the 3 weights."""
    w = torch.cat([torch.ones(1, 16), torch.tensor([[4.0, 8.0, 12.0]])], dim=1)   # 19 inputs
    spec = QuantSpec(8, group_size=16, clip_percentile=75)
    _, scale = quantize_weight(w, spec)
    expected = torch.quantile(torch.tensor([4.0, 8.0, 12.0]), 0.75) / spec.qmax
    assert scale[0, 1].item() == pytest.approx(expected.item(), rel=2e-3)


@pytest.mark.parametrize("vnni, quant_max", [(True, 255), (False, 127)])
def test_pt2e_activations_use_the_reduced_range_on_a_cpu_without_vnni(monkeypatch, vnni, quant_max):
    # Without VNNI, oneDNN's int8 kernels sum pairs of u8 x s8 products in int16 (vpmaddubsw),
    # which saturates for activations on 0..255: the compiled model then loses accuracy that
    # its reference graph keeps.
    from quantization import pt2e
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    config = pt2e._quantizer(is_qat=False).global_config
    assert config.input_activation.quant_max == quant_max
    assert pt2e.activation_grid() == ("int8 per-tensor" if vnni else "int8 per-tensor, 7-bit range (no VNNI)")

