"""Batched, on-device augmentation and normalisation of uint8 image tensors.

torchvision's transforms draw one random parameter per call, so applied to a batch they crop,
flip or jitter every image the same way; the standard CIFAR recipe needs independent draws per
image. These few functions do that with vectorised tensor ops (hand-written for that reason),
on whatever device the batch lives on.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from common.data import DATASETS


def random_crop(images: torch.Tensor, padding: int = 4,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding`` pixels and crop back at a random offset per image.

    images: [B,C,H,W] (any dtype) -> [B,C,H,W], returned in channels_last memory layout.
    """
    b, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4).permute(0, 2, 3, 1)  # [B,H+2p,W+2p,C]
    dev = images.device
    off_y = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=dev)
    off_x = torch.randint(0, 2 * padding + 1, (b, 1), generator=generator, device=dev)
    rows = (off_y + torch.arange(h, device=dev))[:, :, None]      # [B,H,1]
    cols = (off_x + torch.arange(w, device=dev))[:, None, :]      # [B,1,W]
    batch = torch.arange(b, device=dev)[:, None, None]
    return padded[batch, rows, cols].permute(0, 3, 1, 2)           # [B,C,H,W], NHWC strides


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2. [B,C,H,W] -> [B,C,H,W]."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


@functools.lru_cache(maxsize=64)
def _constant(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A constant tensor made once per device and dtype: building it from a Python list on a GPU
    is a host-to-device copy that waits for the device, once per batch otherwise. Never mutate."""
    return torch.tensor(values, device=device, dtype=dtype)


@functools.lru_cache(maxsize=64)
def _inverse(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The inverse of the matrix ``values``, computed once per device and dtype (the inversion
    checks for singularity on the host, so on a GPU it would wait for the device every batch)."""
    return torch.linalg.inv(_constant(values, device, dtype))


_LUMA = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def color_jitter(images: torch.Tensor, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, hue: float = 0.1,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-image colour jitter of float RGB images in [0,1]; [B,3,H,W] -> [B,3,H,W] in [0,1].

    Factors are drawn per image as in torchvision's ColorJitter: brightness, contrast and
    saturation from U[1-a, 1+a], hue shift from U[-hue, hue] of a full turn (applied as a
    rotation of the chroma plane in YIQ space). The order is fixed: brightness, contrast,
    saturation, hue.
    """
    b, dev, dtype = images.shape[0], images.device, images.dtype

    def factor(amount: float) -> torch.Tensor:
        u = torch.rand(b, 1, 1, 1, generator=generator, device=dev, dtype=dtype)
        return 1 + amount * (2 * u - 1)

    luma = _constant(_LUMA, dev, dtype).view(1, 3, 1, 1)
    x = (images * factor(brightness)).clamp(0, 1)
    gray_mean = (x * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    c = factor(contrast)
    x = (c * x + (1 - c) * gray_mean).clamp(0, 1)
    s = factor(saturation)
    x = (s * x + (1 - s) * (x * luma).sum(1, keepdim=True)).clamp(0, 1)
    if hue > 0:
        to_yiq = _constant(_RGB_TO_YIQ, dev, dtype)
        angle = (2 * torch.rand(b, generator=generator, device=dev, dtype=dtype) - 1) * hue * 2 * math.pi
        cos, sin = angle.cos(), angle.sin()
        rot = torch.zeros(b, 3, 3, device=dev, dtype=dtype)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
        mix = _inverse(_RGB_TO_YIQ, dev, dtype) @ rot @ to_yiq       # [B,3,3] RGB -> RGB
        x = torch.einsum("bij,bjhw->bihw", mix, x).clamp(0, 1)
    return x


@dataclass
class BatchTransform:
    """uint8 batch [B,3,32,32] -> normalised float32 model input [B,3,32,32] (channels_last).

    ``augment`` turns on random crop (4-pixel padding) and flip; ``jitter`` adds colour jitter
    (the colour-invariance experiment). Randomness comes from ``generator`` (on the batch's device).
    """

    dataset: str
    augment: bool = False
    jitter: bool = False
    generator: torch.Generator | None = None
    channels_last: bool = True

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.augment:
            images = random_flip(random_crop(images, 4, self.generator), self.generator)
        x = images.float().div_(255)
        if self.jitter:
            x = color_jitter(x, generator=self.generator)
        spec = DATASETS[self.dataset]
        mean = _constant(tuple(spec["mean"]), x.device, torch.float32).view(1, 3, 1, 1)
        std = _constant(tuple(spec["std"]), x.device, torch.float32).view(1, 3, 1, 1)
        x = (x - mean) / std
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return x.contiguous(memory_format=fmt)
