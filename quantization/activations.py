"""Static per-tensor fake-quantization of layer inputs (activations), with calibration.

torchao's QAT fake quantizers wrap Linear layers only and its PT2E flow is int8-only, so the
study's k-bit activation formats (int4, power-of-two, percentile clipping) are written here.
An ``ActFakeQuant`` sits in front of a conv/linear (a forward pre-hook). During calibration it
records the range of its input; afterwards it rounds the input to a fixed grid: unsigned when
the calibrated input was non-negative (post-ReLU), symmetric signed otherwise. Gradients pass
straight through inside the clipping range and are zero outside it (as in PACT/LSQ).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from quantization.quantizers import FLOAT_DTYPES, codebook, round_to_levels

SAMPLES_PER_BATCH = 1 << 16   # values kept per calibration batch for percentile estimates


@dataclass(frozen=True)
class ActSpec:
    """An activation format: ``bits`` and ``dtype`` ('int' | 'pow2' | 'float16' | 'bfloat16');
    ``clip_percentile`` None clips at the calibrated absmax, else at that percentile of |x|."""

    bits: int
    dtype: str = "int"
    clip_percentile: float | None = None

    def __post_init__(self):
        if self.dtype in FLOAT_DTYPES:
            if self.bits != 16:
                raise ValueError(f"{self.dtype} activations are 16-bit")
        elif self.dtype not in ("int", "pow2") or not 2 <= self.bits <= 8:
            raise ValueError(f"activation formats: int/pow2 with 2..8 bits or a 16-bit float, "
                             f"got {self.dtype}{self.bits}")

    @property
    def label(self) -> str:
        if self.dtype in FLOAT_DTYPES:
            return self.dtype
        clip = "max" if self.clip_percentile is None else f"p{self.clip_percentile:g}"
        return f"{self.dtype}{self.bits}/tensor/{clip}"


class ActFakeQuant(nn.Module):
    """Fake-quantizer of one tensor: ``start_calibration()``, run batches through it,
    ``finish_calibration()``, then it quantizes."""

    def __init__(self, spec: ActSpec, seed: int = 0):
        super().__init__()
        self.spec = spec
        self.register_buffer("clip", torch.tensor(0.0))
        self.register_buffer("signed", torch.tensor(False))
        self.observing = False
        self._samples: list[torch.Tensor] = []
        self._absmax = 0.0
        self._min = 0.0
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def calibrated(self) -> bool:
        return bool(self.clip > 0) or self.spec.dtype in FLOAT_DTYPES

    def start_calibration(self) -> None:
        """Forget earlier observations and record the range of the next inputs."""
        self._samples, self._absmax, self._min, self.observing = [], 0.0, 0.0, True

    def observe(self, x: torch.Tensor) -> None:
        """Record the range of ``x`` and a random sample of |x| for percentile estimates."""
        flat = x.detach().float().flatten()
        self._absmax = max(self._absmax, float(flat.abs().max()))
        self._min = min(self._min, float(flat.min()))
        if self.spec.clip_percentile is not None:
            pick = torch.randint(0, flat.numel(), (min(flat.numel(), SAMPLES_PER_BATCH),),
                                 generator=self._generator)
            self._samples.append(flat[pick.to(flat.device)].abs().cpu())

    def finish_calibration(self) -> None:
        """Fix the clipping value from what was observed (absmax or percentile of |x|)."""
        if self.spec.clip_percentile is None or not self._samples:
            clip = self._absmax
        else:
            clip = float(torch.quantile(torch.cat(self._samples), self.spec.clip_percentile / 100))
        self.clip.fill_(max(clip, 1e-8))
        self.signed.fill_(self._min < 0)
        self._samples, self.observing = [], False

    def levels(self) -> torch.Tensor:
        """The grid in units of ``clip``: sorted levels in [-1, 1] or [0, 1]."""
        return codebook(self.spec.dtype, self.spec.bits, signed=bool(self.signed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.dtype in FLOAT_DTYPES:
            return x + (x.to(FLOAT_DTYPES[self.spec.dtype]).to(x.dtype) - x).detach()
        if self.observing:
            self.observe(x)
            return x
        if not self.calibrated:
            raise RuntimeError("ActFakeQuant used before calibration; call calibrate_activations")
        clip = self.clip.to(x.dtype)
        lower = -clip if bool(self.signed) else torch.zeros_like(clip)
        clipped = torch.maximum(torch.minimum(x, clip), lower)   # gradient 0 outside the range
        levels = self.levels().to(x.device, x.dtype)
        rounded = levels[round_to_levels(clipped / clip, levels)] * clip
        return clipped + (rounded - clipped).detach()


def _pre_hook(module: nn.Module, args: tuple) -> tuple:
    return (module.input_quant(args[0]), *args[1:])


def attach_act_quant(model: nn.Module, specs: dict[str, ActSpec], seed: int = 0) -> nn.Module:
    """Put an ``ActFakeQuant`` (as ``layer.input_quant``) in front of each named layer."""
    modules = dict(model.named_modules())
    for i, (name, spec) in enumerate(specs.items()):
        layer = modules[name]
        layer.input_quant = ActFakeQuant(spec, seed=seed + i)
        layer.register_forward_pre_hook(_pre_hook)
    return model


def act_quantizers(model: nn.Module) -> dict[str, ActFakeQuant]:
    """The attached activation quantizers by the name of the layer they feed."""
    return {n.removesuffix(".input_quant"): m for n, m in model.named_modules()
            if isinstance(m, ActFakeQuant)}


@torch.no_grad()
def calibrate_activations(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Run ``batches`` (normalised images [B,3,H,W], train/val only) through ``model`` in eval
    mode with every attached quantizer observing, then fix their clipping values."""
    quantizers = act_quantizers(model).values()
    for q in quantizers:
        q.start_calibration()
    model.eval()
    for batch in batches:
        model(batch)
    for q in quantizers:
        q.finish_calibration()
    return model
