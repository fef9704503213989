"""VGG networks in the CIFAR form (32x32 input), with BatchNorm and a width multiplier.

Each network is five stages of (3x3 conv -> BatchNorm -> ReLU) blocks, each stage followed by a
2x2 max-pool, so a 32x32 image ends as a 1x1 map; a small two-layer classifier follows.
The layout is explicit (a list of conv widths per stage) so that pruned, physically smaller
models are the same class, rebuilt from ``model.config``.
"""

from __future__ import annotations

import torch
from torch import nn

from common.architectures import VGG_STAGES   # conv output channels per stage, by name

CLASSIFIER_HIDDEN = 512


def scale_channels(channels: int, width: float) -> int:
    """Channels after the width multiplier: ``round(channels * width)``, at least 1."""
    return max(1, int(round(channels * width)))


class ConvBNReLU(nn.Sequential):
    """3x3 convolution (no bias) -> BatchNorm2d -> ReLU; [B,C_in,H,W] -> [B,C_out,H,W]."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class VGG(nn.Module):
    """A CIFAR VGG built from explicit per-stage conv widths.

    ``forward(x)`` maps images [B,3,32,32] to logits [B,num_classes].
    ``forward_with_features(x)`` also returns the five stage outputs (post-ReLU, pre-pool), of
    shapes [B,C_s,32/2^s,32/2^s] for s = 0..4 -- the hooks for FitNets hints, CRD and Grad-CAM.
    """

    def __init__(self, stage_channels: list[list[int]], num_classes: int, hidden: int,
                 name: str = "vgg"):
        super().__init__()
        self.config = {
            "name": name,
            "stage_channels": [list(map(int, s)) for s in stage_channels],
            "num_classes": int(num_classes),
            "hidden": int(hidden),
        }
        stages, in_channels = [], 3
        for widths in stage_channels:
            blocks = []
            for out_channels in widths:
                blocks.append(ConvBNReLU(in_channels, out_channels))
                in_channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Images [B,3,32,32] -> (logits [B,num_classes], list of 5 stage feature maps)."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
            x = self.pool(x)
        return self.classifier(x), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B,3,32,32] -> logits [B,num_classes]."""
        return self.forward_with_features(x)[0]

    def convs(self) -> list[nn.Conv2d]:
        """The conv layers in forward order."""
        return [m for m in self.stages.modules() if isinstance(m, nn.Conv2d)]


def build_model(name: str, num_classes: int = 100, width: float = 1.0) -> VGG:
    """Build 'vgg11' | 'vgg13' | 'vgg16' | 'vgg19' for 32x32 input.

    ``width`` scales every conv and the classifier's hidden layer (0.5 halves them).
    """
    if name not in VGG_STAGES:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(VGG_STAGES)}")
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    stages = [[scale_channels(c, width) for c in stage] for stage in VGG_STAGES[name]]
    return VGG(stages, num_classes, scale_channels(CLASSIFIER_HIDDEN, width), name=name)


def model_from_config(config: dict) -> VGG:
    """Rebuild a (possibly channel-pruned) VGG from its ``model.config`` dict."""
    return VGG(config["stage_channels"], config["num_classes"], config["hidden"], config["name"])


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable and frozen; buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def architecture_id(model: VGG) -> str:
    """'vgg11/2375978 params': the architecture (family and parameter count) that decides a
    model's dense latency; a channel-pruned model has its own, an unstructured-pruned one its
    original's (its zeros are still computed by dense kernels)."""
    return f"{model.config['name']}/{count_parameters(model)} params"
