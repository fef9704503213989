"""Real on-disk formats for quantized models, and their size in bits.

A quantized VGG is stored as one ``torch.save`` dict: for each quantized layer its codes packed
``bits`` per value into bytes plus one float16 scale per block (or the float16/bfloat16 weight
for 16-bit formats); every other floating tensor of the state_dict (BatchNorm, biases, layers
kept in high precision) as float16. ``load_weight_quantized`` decodes it back to a float32
state_dict, so the file is proven to hold the model that was evaluated.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from common.measure import saved_size_bytes
from pruning.methods import pack_bitmask, unpack_bitmask
from quantization.quantizers import (QuantSpec, dequantize_weight, pack_codes, quantize_weight,
                                     storage_bits, unpack_codes)

FORMAT_VERSION = 1


def _plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with parametrized weights under their plain names (fp32 originals)."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        state[key.replace("parametrizations.weight.original", "weight")] = value.detach()
    return state


def encode(model: nn.Module, config: dict[str, QuantSpec], sparse: bool = False) -> dict:
    """The storable dict of ``model`` with the layers in ``config`` quantized (see module doc).

    ``sparse``: integer layers keep a bitmask of their non-zero codes (1 bit per weight) and
    pack only those codes, for pruned models (a zero weight has code 0: zero point 0).
    Every tensor of the result is on the CPU (a file does not depend on the training device).
    """
    state = {k: v.cpu() for k, v in _plain_state(model).items()}
    layers, rest = {}, {}
    for name, spec in config.items():
        weight = state.pop(f"{name}.weight").float()
        codes, scale = quantize_weight(weight, spec)
        entry = {"spec": spec.__dict__, "shape": list(weight.shape)}
        if spec.is_float:
            entry["weight"] = codes
        elif sparse and spec.dtype == "int":
            nonzero = codes != 0
            entry["bitmask"] = pack_bitmask(nonzero)
            entry["codes"] = pack_codes(codes[nonzero], spec.bits)
            entry["scale"] = scale.half()
        else:
            entry["codes"] = pack_codes(codes, spec.bits)
            entry["scale"] = scale.half()
        layers[name] = entry
    for key, value in state.items():
        rest[key] = value.half() if value.is_floating_point() else value
    return {"format_version": FORMAT_VERSION, "layers": layers, "tensors": rest}


def decode(stored: dict) -> dict[str, torch.Tensor]:
    """Float32 state_dict from ``encode``'s dict (weights dequantized)."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in stored["tensors"].items()}
    for name, entry in stored["layers"].items():
        spec = QuantSpec(**entry["spec"])
        shape = torch.Size(entry["shape"])
        if spec.is_float:
            state[f"{name}.weight"] = entry["weight"].float()
            continue
        if "bitmask" in entry:  # sparse: only the non-zero codes were packed
            nonzero = unpack_bitmask(entry["bitmask"], shape.numel())
            codes = torch.zeros(shape.numel(), dtype=torch.int16, device=nonzero.device)
            codes[nonzero] = unpack_codes(entry["codes"], spec.bits, int(nonzero.sum()), signed=True)
        else:
            codes = unpack_codes(entry["codes"], spec.bits, shape.numel(), signed=spec.dtype == "int")
        codes = codes.view(shape).to(torch.int8 if spec.dtype == "int" else torch.uint8)
        state[f"{name}.weight"] = dequantize_weight(codes, entry["scale"].float(), spec)
    return state


def save_weight_quantized(model: nn.Module, config: dict[str, QuantSpec],
                          path: str | os.PathLike, sparse: bool = False) -> int:
    """Write ``model`` with ``config``'s layers quantized (``encode``) to ``path``; returns the
    file's bytes."""
    return saved_size_bytes(encode(model, config, sparse), path)


def load_weight_quantized(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a file written by ``save_weight_quantized`` as a float32 state_dict."""
    return decode(torch.load(path, map_location="cpu", weights_only=True))


def model_bits(model: nn.Module, config: dict[str, QuantSpec]) -> int:
    """Total bits of the model in this format: quantized weights by ``storage_bits`` (codes and
    float16 scales), every other floating tensor of the state_dict at 16 bits."""
    state = _plain_state(model)
    total = 0
    for key, value in state.items():
        layer = key.removesuffix(".weight")
        if key.endswith(".weight") and layer in config:
            total += storage_bits(value.shape, config[layer])
        elif value.is_floating_point():
            total += 16 * value.numel()
    return total
