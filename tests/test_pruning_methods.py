"""Pruning primitives: exact sparsity, masks that survive optimizer steps, channel pruning equivalence."""

import pytest
import torch
from torch import nn

from common.errors import UserError
from common.models import build_model
from pruning.methods import (channel_prune, count_nonzero_parameters, from_bitmask_state, layer_sparsity,
                             magnitude_mask, overall_sparsity, pack_bitmask, prunable_layers,
                             prune_by_magnitude, to_bitmask_state, unpack_bitmask,
                             remove_masks)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.7, 0.9, 1.0])
def test_magnitude_mask_prunes_exactly_and_keeps_the_largest(sparsity):
    w = torch.randn(64, 32, 3, 3, generator=torch.Generator().manual_seed(0))
    mask = magnitude_mask(w, sparsity)
    n_pruned = int((~mask).sum())
    assert mask.shape == w.shape and n_pruned == round(sparsity * w.numel())
    if 0 < n_pruned < w.numel():
        assert w.abs()[mask].min() >= w.abs()[~mask].max()


def test_magnitude_mask_exact_count_with_ties():
    w = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, -3.0])
    mask = magnitude_mask(w, 0.5)
    assert int((~mask).sum()) == 3 and bool(mask[4]) and bool(mask[5])


@pytest.mark.parametrize("bad", [-0.1, 1.5, 70])
def test_impossible_sparsity_is_refused(bad):
    with pytest.raises(ValueError, match="between 0 and 1"):
        magnitude_mask(torch.randn(10), bad)


def test_masks_survive_optimizer_steps_and_removal():
    model = build_model("vgg11", 10, 0.125)
    names = [n for n, _ in prunable_layers(model)]
    prune_by_magnitude(model, {n: 0.7 for n in names})
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.randint(0, 10, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    before = overall_sparsity(model)
    expected = sum(round(0.7 * r["params"]) for r in layer_sparsity(model)) / sum(
        r["params"] for r in layer_sparsity(model))
    assert before == pytest.approx(expected, abs=1e-9)
    remove_masks(model)
    assert not any(n.endswith("_orig") for n, _ in model.named_parameters())
    assert overall_sparsity(model) == pytest.approx(before, abs=1e-9)
    assert set(model.state_dict()) == set(build_model("vgg11", 10, 0.125).state_dict())


def test_nonzero_count_sees_the_masked_weight():
    model = build_model("vgg11", 10, 0.125)
    before = count_nonzero_parameters(model)  # BatchNorm biases start at zero
    conv = model.convs()[1]
    prune_by_magnitude(model, {"stages.1.0.0": 0.5})
    assert count_nonzero_parameters(model) == before - conv.weight.numel() // 2


def _trained_like(model):
    # Random BN statistics and affine terms, so the equivalence test exercises them.
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def test_channel_prune_ratio_zero_is_identical():
    model = _trained_like(build_model("vgg11", 10, 0.25))
    same = channel_prune(model, 0.0).eval()
    x = torch.randn(4, 3, 32, 32)
    assert same.config == model.config and torch.equal(same(x), model(x))


@pytest.mark.parametrize("name", ["vgg11", "vgg16"])
def test_channel_prune_shapes_and_equivalence_with_zeroed_channels(name):
    model = _trained_like(build_model(name, 10, 0.25))
    n_convs = len(model.convs())
    ratios = [0.25 + 0.5 * (i % 2) for i in range(n_convs)]
    small = channel_prune(model, ratios).eval()
    for conv, small_conv, r in zip(model.convs(), small.convs(), ratios):
        assert small_conv.out_channels == conv.out_channels - round(r * conv.out_channels)
    for prev, nxt in zip(small.convs(), small.convs()[1:]):
        assert nxt.in_channels == prev.out_channels
    assert small.classifier[1].in_features == small.convs()[-1].out_channels
    # The original with the removed channels zeroed after BatchNorm computes the same function.
    zeroed = _trained_like(build_model(name, 10, 0.25))
    zeroed.load_state_dict(model.state_dict())
    blocks = [b for stage in zeroed.stages for b in stage]
    for block, conv, small_conv in zip(blocks, model.convs(), small.convs()):
        norms = conv.weight.flatten(1).norm(dim=1)
        removed = norms.argsort()[:conv.out_channels - small_conv.out_channels]
        block[1].weight.data[removed] = 0
        block[1].bias.data[removed] = 0
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(small(x), zeroed.eval()(x), atol=1e-5)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_channel_prune_refuses_bad_ratios():
    model = build_model("vgg11", 10, 0.125)
    with pytest.raises(ValueError, match="8 conv"):
        channel_prune(model, [0.5, 0.5])
    with pytest.raises(ValueError, match="every channel"):
        channel_prune(model, 1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        channel_prune(model, 50)


def test_bitmask_pack_round_trip_and_size():
    mask = torch.rand(13, 7, generator=torch.Generator().manual_seed(0)) > 0.6
    packed = pack_bitmask(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == (13 * 7 + 7) // 8
    assert torch.equal(unpack_bitmask(packed, mask.numel()).view(13, 7), mask)
    assert torch.equal(pack_bitmask(torch.tensor([True, False, False, False, False, False, False, True])),
                       torch.tensor([129], dtype=torch.uint8))


def test_bitmask_state_round_trip_is_exact_and_smaller(tmp_path):
    model = build_model("vgg11", 10, 0.25)
    prune_by_magnitude(model, {n: 0.7 for n, _ in prunable_layers(model)})
    remove_masks(model)
    state = model.state_dict()
    compact = to_bitmask_state(state)
    restored = from_bitmask_state(compact)
    assert all(torch.equal(restored[k], state[k]) for k in state)
    torch.save(state, tmp_path / "dense.pt")
    torch.save(compact, tmp_path / "compact.pt")
    ratio = (tmp_path / "compact.pt").stat().st_size / (tmp_path / "dense.pt").stat().st_size
    assert 0.30 < ratio < 0.40  # 1/32 bitmask + 30% values, plus small unpruned tensors


def test_equal_drop_rule_on_hand_made_curves():
    import numpy as np
    from pruning.study import ratio_at_drop, ratios_for_target
    xs = np.array([0.0, 0.5, 0.9])
    assert ratio_at_drop(xs, np.array([0.0, 1.0, 5.0]), 3.0) == pytest.approx(0.7, abs=1e-2)
    assert ratio_at_drop(xs, np.array([0.0, 1.0, 5.0]), 100.0) == 0.9  # capped at the grid
    # A noisy non-monotone sweep is read through its running maximum.
    assert ratio_at_drop(xs, np.array([0.0, 2.0, 1.0]), 1.0) == pytest.approx(0.25, abs=1e-2)
    # Two layers of equal size: the robust one ('a') takes more sparsity at the target.
    curves = {"a": (xs, np.array([np.nan, 90.0, 89.0])), "b": (xs, np.array([np.nan, 80.0, 40.0]))}
    sizes = {"a": 100, "b": 100}
    achieved = lambda r: sum(round(r[k] * n) for k, n in sizes.items()) / 200
    ratios, delta = ratios_for_target(curves, 90.0, achieved, 0.6)
    assert achieved(ratios) == pytest.approx(0.6, abs=0.01) and ratios["a"] > ratios["b"]
    with pytest.raises(UserError, match="target 0.95 is out of reach"):
        ratios_for_target(curves, 90.0, achieved, 0.95)
    # Flat sweeps (no measurable drop) still reach an intermediate target smoothly.
    flat = {"a": (xs, np.array([np.nan, 90.0, 90.0])), "b": (xs, np.array([np.nan, 90.0, 90.0]))}
    ratios, _ = ratios_for_target(flat, 90.0, achieved, 0.5)
    assert ratios["a"] == pytest.approx(0.5, abs=0.01) and ratios["b"] == pytest.approx(0.5, abs=0.01)


def test_sensitivity_and_final_rows_name_layers_as_the_figures_do(monkeypatch):
    """The sweeps' rows keep the module name (``layer``: what the equal-drop rule prunes by) and
    carry the paper's name beside it (``layer_name``), the name the figures write."""
    from types import SimpleNamespace

    import pruning.study as study

    model = build_model("vgg11", num_classes=10, width=0.125).eval()
    monkeypatch.setattr(study, "val_top1", lambda m, ctx: 50.0)
    ctx = SimpleNamespace(progress=False)
    paper = [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2"]
    rows = study.unstructured_sensitivity(model, ctx, grid=[0.5])
    assert [r["layer_name"] for r in rows] == paper
    assert [r["layer"] for r in rows] == [n for n, _ in prunable_layers(model)]
    assert set(study.sensitivity_curves(rows, "sparsity")) == {n for n, _ in prunable_layers(model)}
    rows = study.structured_sensitivity(model, ctx, grid=[0.5])
    assert [r["layer_name"] for r in rows] == paper[:8] and [r["layer"] for r in rows] == study.conv_names(model)
    pruned = channel_prune(model, [0.5] * 8)
    meta = {"ratios": {n: 0.5 for n in study.conv_names(model)}}
    assert [r["layer_name"] for r in study.final_rows(study.STRUCTURED, model, pruned, meta)] == paper[:8]
