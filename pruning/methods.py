"""Pruning primitives for the CIFAR VGGs: magnitude masks, masked fine-tuning, channel pruning, counts.

Unstructured pruning uses ``torch.nn.utils.prune`` (the weight becomes ``weight_orig * weight_mask``
on every forward, so pruned entries stay zero through any optimizer step) and ``prune.remove``
to bake the zeros in for export. Channel pruning physically rebuilds a smaller ``VGG``: torch has
no utility that removes channels across coupled layers, so that part is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from common.models import VGG, model_from_config


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Conv2d and Linear, in forward order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _check_fraction(value: float, what: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be between 0 and 1 (a fraction, not a percentage), got {value}")


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask of ``weight``'s shape keeping its largest-magnitude entries.

    Exactly ``round(sparsity * weight.numel())`` entries are False (pruned); ties at the
    threshold are broken by position, so the count is exact.
    """
    _check_fraction(sparsity, "sparsity")
    n_prune = int(round(sparsity * weight.numel()))
    mask = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
    if n_prune:
        order = weight.detach().abs().flatten().argsort(stable=True)
        mask[order[:n_prune]] = False
    return mask.view_as(weight)


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Attach ``masks`` (layer name -> bool mask of its weight) with ``torch.nn.utils.prune``.

    Masks compose with masks already attached. Returns ``model`` (modified in place).
    """
    modules = dict(model.named_modules())
    for name, mask in masks.items():
        prune.custom_from_mask(modules[name], "weight", mask.to(modules[name].weight.device))
    return model


def prune_by_magnitude(model: nn.Module, sparsities: dict[str, float]) -> nn.Module:
    """Magnitude-prune each named layer's weight to its sparsity (fraction) and attach the masks."""
    modules = dict(model.named_modules())
    return apply_masks(model, {name: magnitude_mask(modules[name].weight, s)
                               for name, s in sparsities.items()})


def remove_masks(model: nn.Module) -> nn.Module:
    """Bake attached masks into plain weights (zeros stay), for export. In place; returns model."""
    for _, module in prunable_layers(model):
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
    return model


def layer_sparsity(model: nn.Module) -> list[dict]:
    """Per conv/linear layer: layer, params (weight entries), zeros, sparsity (fraction)."""
    rows = []
    for name, module in prunable_layers(model):
        weight = module.weight.detach()
        zeros = int((weight == 0).sum())
        rows.append({"layer": name, "params": weight.numel(), "zeros": zeros,
                     "sparsity": zeros / weight.numel()})
    return rows


def overall_sparsity(model: nn.Module) -> float:
    """Fraction of zero entries over all conv and linear weights (biases and BN excluded)."""
    rows = layer_sparsity(model)
    return sum(r["zeros"] for r in rows) / sum(r["params"] for r in rows)


def count_nonzero_parameters(model: nn.Module) -> int:
    """Non-zero entries over every parameter (weights, biases, BN affine)."""
    return sum(int((p.detach() != 0).sum()) for p in _effective_parameters(model))


def _effective_parameters(model: nn.Module) -> list[torch.Tensor]:
    # With masks attached the live weight is the ``weight`` attribute, not ``weight_orig``.
    tensors = []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            tensors.append(getattr(module, name[:-len("_orig")]) if name.endswith("_orig") else param)
    return tensors


def _channel_ratios(ratios: float | Sequence[float], n_convs: int) -> list[float]:
    values = [float(ratios)] * n_convs if isinstance(ratios, (int, float)) else [float(r) for r in ratios]
    if len(values) != n_convs:
        raise ValueError(f"got {len(values)} channel ratios for {n_convs} conv layers")
    for r in values:
        _check_fraction(r, "channel ratio")
        if r == 1.0:
            raise ValueError("a channel ratio of 1 would remove every channel of a layer")
    return values


def channel_importance(conv: nn.Conv2d) -> torch.Tensor:
    """L2 norm of each output filter of ``conv``: [C_out]."""
    return conv.weight.detach().flatten(1).norm(dim=1)


def channels_to_keep(conv: nn.Conv2d, ratio: float) -> torch.Tensor:
    """Sorted indices of the ``C_out - round(ratio * C_out)`` filters with the largest L2 norm."""
    n_out = conv.out_channels
    n_keep = max(1, n_out - int(round(ratio * n_out)))
    return channel_importance(conv).topk(n_keep).indices.sort().values


@torch.no_grad()
def channel_prune(model: VGG, ratios: float | Sequence[float]) -> VGG:
    """A new, physically smaller VGG with a fraction of each conv's output channels removed.

    ``ratios``: one fraction for every conv, or one per conv in forward order. For each conv the
    filters with the smallest L2 norm are removed together with their BatchNorm entries and the
    matching input channels of the next conv (or of the first Linear after the last conv). The
    result computes exactly what ``model`` computes with those channels zeroed after BatchNorm;
    a ratio of 0 gives an identical copy. ``model`` is not modified.
    """
    convs = model.convs()
    ratios = _channel_ratios(ratios, len(convs))
    keeps = [channels_to_keep(conv, r) for conv, r in zip(convs, ratios)]
    config = dict(model.config)
    sizes = iter(len(k) for k in keeps)
    config["stage_channels"] = [[next(sizes) for _ in stage] for stage in model.config["stage_channels"]]
    small = model_from_config(config).to(convs[0].weight.device)

    blocks = [b for stage in model.stages for b in stage]
    small_blocks = [b for stage in small.stages for b in stage]
    keep_in = torch.arange(3, device=keeps[0].device)
    for block, small_block, keep_out in zip(blocks, small_blocks, keeps):
        conv, bn = block[0], block[1]
        small_block[0].weight.copy_(conv.weight[keep_out][:, keep_in])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(small_block[1], name).copy_(getattr(bn, name)[keep_out])
        small_block[1].num_batches_tracked.copy_(bn.num_batches_tracked)
        keep_in = keep_out
    first_linear = model.classifier[1]
    small.classifier[1].weight.copy_(first_linear.weight[:, keep_in])
    small.classifier[1].bias.copy_(first_linear.bias)
    small.classifier[3].load_state_dict(model.classifier[3].state_dict())
    return small.train(model.training)


# ----------------------------------------------------------------------------- compact export

def _bit_weights(device: torch.device) -> torch.Tensor:
    """uint8 [8]: 1, 2, 4, ... 128 on ``device``."""
    return 1 << torch.arange(8, dtype=torch.uint8, device=device)


def pack_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """Bool tensor (any shape, N entries) -> uint8 [ceil(N/8)] on ``mask``'s device, 8 entries
    per byte, LSB first."""
    flat = mask.flatten().to(torch.uint8)
    flat = torch.nn.functional.pad(flat, (0, (-flat.numel()) % 8))
    return (flat.view(-1, 8) * _bit_weights(mask.device)).sum(1).to(torch.uint8)


def unpack_bitmask(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of ``pack_bitmask``: uint8 [ceil(N/8)] -> bool [N], on ``packed``'s device."""
    bits = (packed[:, None] & _bit_weights(packed.device)) != 0
    return bits.flatten()[:numel]


def to_bitmask_state(state_dict: dict[str, torch.Tensor]) -> dict:
    """Compact form of a pruned state_dict: each conv/linear weight (ndim >= 2) becomes
    ``{"shape", "bitmask" (uint8, 1 bit per entry), "values" (its non-zeros, same dtype)}``;
    other tensors are kept as they are. Everything comes back on the CPU (what is saved, whatever
    device the model trained on). Bytes: N/8 + 4 * nonzeros per fp32 weight."""
    compact = {}
    for key, t in state_dict.items():
        if key.endswith("weight") and t.ndim >= 2:
            nonzero = t != 0
            compact[key] = {"shape": tuple(t.shape), "bitmask": pack_bitmask(nonzero).cpu(),
                            "values": t[nonzero].contiguous().cpu()}
        else:
            compact[key] = t.cpu()
    return compact


def from_bitmask_state(compact: dict) -> dict[str, torch.Tensor]:
    """Rebuild the dense state_dict from ``to_bitmask_state``'s output (exact round trip)."""
    state = {}
    for key, v in compact.items():
        if isinstance(v, dict):
            numel = int(torch.Size(v["shape"]).numel())
            dense = torch.zeros(numel, dtype=v["values"].dtype, device=v["values"].device)
            dense[unpack_bitmask(v["bitmask"], numel)] = v["values"]
            state[key] = dense.view(v["shape"])
        else:
            state[key] = v
    return state
