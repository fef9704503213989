"""k-bit weight quantizers for the quantization study, built on torchao's affine primitives.

torchao's ``choose_qparams_affine`` / ``quantize_affine`` / ``dequantize_affine`` do the integer
arithmetic for any bit width and block size; this module adds what the study needs around them:
a spec that names a format (bits, data type, block size), a quantize-dequantize of conv and
linear weights (4-D conv weights are viewed as [C_out, C_in*kh*kw], so a block is a run of
input weights of one output channel), a straight-through fake-quantizer for QAT, and 4-bit
packing for on-disk sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchao.quantization.quant_primitives import (MappingType, choose_qparams_affine,
                                                   dequantize_affine, quantize_affine)


@dataclass(frozen=True)
class QuantSpec:
    """A weight format: ``bits`` per value, symmetric integer grid, one scale per block.

    ``group_size`` None means one scale per output channel; otherwise one scale per run of
    ``group_size`` consecutive input weights of an output channel.
    """

    bits: int
    group_size: int | None = None

    def __post_init__(self):
        if not 2 <= self.bits <= 8:
            raise ValueError(f"integer formats need 2..8 bits, got {self.bits}")

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1))

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1


def _as_rows(weight: torch.Tensor) -> torch.Tensor:
    """Conv [O,I,kh,kw] or linear [O,I] weight as a 2-D [O, I*kh*kw] view."""
    return weight.reshape(weight.shape[0], -1)


def _block_size(rows: torch.Tensor, spec: QuantSpec) -> tuple[int, int]:
    cols = rows.shape[1]
    if spec.group_size is None:
        return (1, cols)
    if cols % spec.group_size:
        raise ValueError(f"group size {spec.group_size} does not divide the {cols} inputs per channel")
    return (1, spec.group_size)


def quantize_weight(weight: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes (int8 tensor holding values in [qmin, qmax], weight's shape) and the scales
    ([O, blocks] float32) of ``weight`` under ``spec`` (symmetric, zero point 0)."""
    rows = _as_rows(weight.detach().float())
    block = _block_size(rows, spec)
    scale, zero = choose_qparams_affine(rows, MappingType.SYMMETRIC, block, torch.int8,
                                        quant_min=spec.qmin, quant_max=spec.qmax,
                                        eps=torch.finfo(torch.float32).eps)
    codes = quantize_affine(rows, block, scale, zero, torch.int8, spec.qmin, spec.qmax)
    return codes.view(weight.shape), scale.view(weight.shape[0], -1)


def dequantize_weight(codes: torch.Tensor, scale: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Float32 weight (codes' shape) from ``quantize_weight``'s codes and scales."""
    rows = _as_rows(codes)
    block = _block_size(rows, spec)
    zero = torch.zeros_like(scale.flatten(), dtype=torch.int32)
    out = dequantize_affine(rows, block, scale.flatten(), zero, torch.int8, spec.qmin, spec.qmax)
    return out.view(codes.shape)


def quantize_dequantize(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """``weight`` rounded to its ``spec`` grid and back (same shape and dtype as ``weight``)."""
    codes, scale = quantize_weight(weight, spec)
    return dequantize_weight(codes, scale, spec).to(weight.dtype)


def fake_quantize(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize-dequantize in the forward pass, identity gradient in the backward pass
    (the straight-through estimator used by QAT)."""
    return weight + (quantize_dequantize(weight, spec) - weight).detach()


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Int codes in [-8, 7] (any shape, N values) -> uint8 [ceil(N/2)], two values per byte."""
    if codes.min() < -8 or codes.max() > 7:
        raise ValueError("int4 codes must lie in [-8, 7]")
    nibbles = (codes.flatten().to(torch.int16) & 0xF).to(torch.uint8)
    nibbles = torch.nn.functional.pad(nibbles, (0, nibbles.numel() % 2))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of ``pack_int4``: uint8 [ceil(N/2)] -> int8 [N] in [-8, 7]."""
    nibbles = torch.stack([packed & 0xF, packed >> 4], dim=1).flatten()[:numel].to(torch.int8)
    return torch.where(nibbles > 7, nibbles - 16, nibbles)
