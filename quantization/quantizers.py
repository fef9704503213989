"""k-bit weight formats for the quantization study, built on torchao's affine primitives.

A ``QuantSpec`` names a weight format: bits, data type and block size. Integer formats use
torchao's ``choose_qparams_affine`` / ``quantize_affine`` / ``dequantize_affine`` for the
arithmetic, on the symmetric *restricted* range [-qmax, qmax] (2^b - 1 levels, qmax = 2^(b-1) - 1):
the scale is absmax / qmax, so without clipping a block's largest weight is represented exactly
and "no clipping" equals clipping at the 100th percentile. (The full range [-2^(b-1), qmax] with
torchao's SYMMETRIC mapping gives scale = absmax / (qmax + 0.5) and clamps each block's largest
positive weight; at 2 bits a channel spanning [-1, 1] would come back as [-1, 0.667]. The price
of the restricted range is one level fewer: at 2 bits the grid is ternary, {-s, 0, s}.)
torchao has no k-bit quantile or power-of-two codebooks for arbitrary k, so those
are written here: a block's values, divided by the block's absmax (or a clipping percentile),
round to the nearest level of a fixed codebook in [-1, 1]. Conv weights [O,I,kh,kw] are viewed as
[O, I*kh*kw] rows, so a block is a run of ``group_size`` input weights of one output channel
(rows are zero-padded to a whole number of groups; the padding is left out of every clipping
statistic).
16-bit formats are plain casts to float16 / bfloat16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchao.quantization.quant_primitives import (MappingType, choose_qparams_affine,
                                                   dequantize_affine, quantize_affine)

CODEBOOK_DTYPES = ("nf", "pow2")    # quantile of a normal (QLoRA's NF-k) | signed powers of two
FLOAT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
DTYPES = ("int", *CODEBOOK_DTYPES, *FLOAT_DTYPES)
SCALE_BITS = 16                     # block scales are stored as float16


@dataclass(frozen=True)
class QuantSpec:
    """A weight format.

    ``dtype``: 'int' (symmetric integer grid [-qmax, qmax]), 'nf' (normal-quantile codebook), 'pow2'
    (0 and +-2^-j codebook), or 'float16'/'bfloat16' (casts, ``bits`` must be 16).
    ``group_size`` None: one scale per output channel; else one per run of ``group_size`` inputs.
    ``clip_percentile`` None: a block's scale covers its absmax; else the given percentile of
    |w| in the block (values beyond it are clipped).
    """

    bits: int
    group_size: int | None = None
    dtype: str = "int"
    clip_percentile: float | None = None

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown weight dtype {self.dtype!r}; choose one of {DTYPES}")
        if self.dtype in FLOAT_DTYPES:
            if self.bits != 16 or self.group_size or self.clip_percentile:
                raise ValueError(f"{self.dtype} is a 16-bit cast without groups or clipping")
        elif not 2 <= self.bits <= 8:
            raise ValueError(f"{self.dtype} formats need 2..8 bits, got {self.bits}")
        if self.group_size is not None and self.group_size < 1:
            raise ValueError(f"group size must be positive, got {self.group_size}")
        if self.clip_percentile is not None and not 50 < self.clip_percentile <= 100:
            raise ValueError(f"clip percentile must be in (50, 100], got {self.clip_percentile}")

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def qmin(self) -> int:
        """Lowest code: -qmax (the symmetric restricted range, so absmax maps to a code exactly)."""
        return -self.qmax

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def label(self) -> str:
        """Short name, e.g. 'int4/ch', 'nf3/g32', 'int8/ch/p99.9', 'float16'."""
        if self.is_float:
            return self.dtype
        block = "ch" if self.group_size is None else f"g{self.group_size}"
        clip = "" if self.clip_percentile is None else f"/p{self.clip_percentile:g}"
        return f"{self.dtype}{self.bits}/{block}{clip}"


def codebook(dtype: str, bits: int, signed: bool = True) -> torch.Tensor:
    """Sorted float32 levels in [-1, 1] (or [0, 1] when not ``signed``) of a codebook format.

    'nf': QLoRA's NormalFloat construction for k bits -- 2^(k-1) positive and 2^(k-1)-1
    negative quantiles of N(0,1), an exact zero, scaled to absmax 1 (2^k levels).
    'pow2': 0 and +-2^-j for j = 0 .. 2^(k-1)-2 (2^k - 1 levels); unsigned: 0 and 2^-j for
    j = 0 .. 2^k-2. 'int' (for activations): the uniform grid with 2^k (unsigned) or
    2^k - 1 (signed, symmetric) levels.
    """
    if dtype == "int":
        top = 2 ** bits - 1 if not signed else 2 ** (bits - 1) - 1
        grid = torch.arange(0 if not signed else -top, top + 1, dtype=torch.float32)
        return grid / top
    if dtype == "pow2":
        count = 2 ** bits - 2 if not signed else 2 ** (bits - 1) - 1
        positive = 2.0 ** -torch.arange(count, dtype=torch.float32)
        levels = torch.cat([torch.zeros(1), positive] + ([-positive] if signed else []))
        return levels.sort().values
    if dtype == "nf":
        if not signed:
            raise ValueError("the NF codebook is signed")
        half = 2 ** (bits - 1)
        offset = 0.5 * ((1 - 1 / (2 * (2 ** bits - 1))) + (1 - 1 / (2 * 2 ** bits)))
        ndtri = torch.special.ndtri
        positive = ndtri(torch.linspace(offset, 0.5, half + 1, dtype=torch.float64)[:-1])
        negative = -ndtri(torch.linspace(offset, 0.5, half, dtype=torch.float64)[:-1])
        levels = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative])
        return (levels / levels.abs().max()).sort().values.float()
    raise ValueError(f"no codebook for dtype {dtype!r}")


def round_to_levels(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index (int64, ``x``'s shape) of the nearest level for each value; ``levels`` sorted."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return torch.bucketize(x.contiguous(), midpoints.to(x.device, x.dtype))


def _as_rows(weight: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, int]:
    """``weight`` as [O, cols + pad] rows zero-padded to whole groups, and the block length."""
    rows = weight.reshape(weight.shape[0], -1)
    cols = rows.shape[1]
    block = cols if spec.group_size is None else spec.group_size
    pad = -cols % block
    return torch.nn.functional.pad(rows, (0, pad)), block


def _clip_values(rows: torch.Tensor, block: int, spec: QuantSpec, cols: int) -> torch.Tensor:
    """Per-block clipping value [O, blocks]: absmax, or the percentile of |w| over the block's
    real weights (the first ``cols`` columns of ``rows``; zero padding is not counted), >= eps."""
    blocks = rows.abs().view(rows.shape[0], -1, block)
    if spec.clip_percentile is None or spec.clip_percentile == 100:
        clip = blocks.amax(-1)
    else:
        real = (torch.arange(rows.shape[1], device=rows.device) < cols).view(-1, block)
        padded_nan = blocks.masked_fill(~real, float("nan"))
        clip = torch.nanquantile(padded_nan, spec.clip_percentile / 100, dim=-1)
    return clip.clamp_min(torch.finfo(torch.float32).eps)


def _as_stored(scale: torch.Tensor) -> torch.Tensor:
    """Scales rounded *up* to float16 (how files store them), so evaluation and file agree exactly
    and a block's largest value still fits the grid (fp16 rounds to within 2^-11 relative)."""
    return (scale * (1 + 2 ** -10)).half().float().clamp_min(torch.finfo(torch.float16).tiny)


def quantize_weight(weight: torch.Tensor, spec: QuantSpec) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Codes (``weight``'s shape) and block scales ([O, blocks] float32) of ``weight``.

    int: int8 codes in [qmin, qmax] with zero point 0; codebooks: uint8 level indices, the
    scale being the block's clipping value; float16/bfloat16: the cast weight and None.
    """
    if spec.is_float:
        return weight.detach().to(FLOAT_DTYPES[spec.dtype]), None
    rows, block = _as_rows(weight.detach().float(), spec)
    cols = weight[0].numel()
    if spec.dtype == "int":
        if spec.clip_percentile is None:
            # restricted range: (qmax - qmin) / 2 == qmax, so scale = absmax / qmax
            scale, _ = choose_qparams_affine(rows, MappingType.SYMMETRIC, (1, block), torch.int8,
                                             quant_min=spec.qmin, quant_max=spec.qmax,
                                             eps=torch.finfo(torch.float32).eps)
        else:
            scale = (_clip_values(rows, block, spec, cols) / spec.qmax).flatten()
        scale = _as_stored(scale)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        codes = quantize_affine(rows, (1, block), scale, zero, torch.int8, spec.qmin, spec.qmax)
    else:
        scale = _as_stored(_clip_values(rows, block, spec, cols))
        normed = (rows.view(rows.shape[0], -1, block) / scale[..., None]).clamp(-1, 1)
        codes = round_to_levels(normed, codebook(spec.dtype, spec.bits)).to(torch.uint8)
    codes = codes.reshape(rows.shape[0], -1)[:, :cols]
    return codes.reshape(weight.shape), scale.reshape(weight.shape[0], -1).float()


def dequantize_weight(codes: torch.Tensor, scale: torch.Tensor | None, spec: QuantSpec) -> torch.Tensor:
    """Float32 weight (``codes``' shape) from ``quantize_weight``'s codes and scales."""
    if spec.is_float:
        return codes.float()
    rows, block = _as_rows(codes, spec)
    cols = codes[0].numel()
    if spec.dtype == "int":
        flat = scale.flatten()
        zero = torch.zeros_like(flat, dtype=torch.int32)
        out = dequantize_affine(rows, (1, block), flat, zero, torch.int8, spec.qmin, spec.qmax)
    else:
        levels = codebook(spec.dtype, spec.bits).to(codes.device)
        out = levels[rows.long()].view(rows.shape[0], -1, block) * scale[..., None]
    return out.reshape(rows.shape[0], -1)[:, :cols].reshape(codes.shape)


def quantize_dequantize(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """``weight`` rounded to its ``spec`` grid and back (same shape and dtype as ``weight``)."""
    codes, scale = quantize_weight(weight, spec)
    return dequantize_weight(codes, scale, spec).to(weight.dtype)


def fake_quantize(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Quantize-dequantize in the forward pass, identity gradient in the backward pass
    (the straight-through estimator used by QAT)."""
    return weight + (quantize_dequantize(weight, spec) - weight).detach()


def storage_bits(shape: torch.Size | tuple[int, ...], spec: QuantSpec) -> int:
    """Bits a weight of ``shape`` takes in ``spec``: ``bits`` per value plus a float16 scale per
    block (the codebook itself is a shared constant and not counted)."""
    numel = math.prod(shape)
    if spec.is_float:
        return 16 * numel
    cols = numel // shape[0]
    blocks = shape[0] * (1 if spec.group_size is None else math.ceil(cols / spec.group_size))
    return spec.bits * numel + SCALE_BITS * blocks


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """The low ``bits`` bits of each integer code (any shape, N values, two's complement for
    negative codes) packed little-endian into uint8 [ceil(N*bits/8)]; for bits=4 the first value
    is the low nibble of byte 0."""
    values = codes.flatten().to(torch.int64) & (2 ** bits - 1)
    planes = (values[:, None] >> torch.arange(bits, device=codes.device)) & 1
    planes = torch.nn.functional.pad(planes.flatten(), (0, -planes.numel() % 8)).view(-1, 8)
    return (planes << torch.arange(8, device=codes.device)).sum(1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, numel: int, signed: bool) -> torch.Tensor:
    """Inverse of ``pack_codes``: uint8 -> int16 [numel], sign-extended when ``signed``."""
    planes = (packed.to(torch.int64)[:, None] >> torch.arange(8, device=packed.device)) & 1
    planes = planes.flatten()[:numel * bits].view(numel, bits)
    values = (planes << torch.arange(bits, device=packed.device)).sum(1)
    if signed:
        values = torch.where(values >= 2 ** (bits - 1), values - 2 ** bits, values)
    return values.to(torch.int16)


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """Int codes in [-8, 7] (N values) -> uint8 [ceil(N/2)], two values per byte."""
    if codes.min() < -8 or codes.max() > 7:
        raise ValueError("int4 codes must lie in [-8, 7]")
    return pack_codes(codes, 4)


def unpack_int4(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """Inverse of ``pack_int4``: uint8 [ceil(N/2)] -> int8 [N] in [-8, 7]."""
    return unpack_codes(packed, 4, numel, signed=True).to(torch.int8)
