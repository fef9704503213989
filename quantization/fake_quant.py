"""Weight fake-quantization applied to a model as a per-layer config, for PTQ simulation and QAT.

Each quantized conv/linear weight gets a ``torch.nn.utils.parametrize`` parametrization: the
module keeps its fp32 weight (what the optimizer updates) and every forward sees the weight
rounded to its k-bit grid, with straight-through gradients. This covers Conv2d, which torchao's
k-bit configs do not; ``bake`` removes the parametrizations and leaves the rounded weights.
Accuracy measured this way is simulated: the arithmetic still runs in floating point.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from quantization.quantizers import QuantSpec, fake_quantize


class WeightFakeQuant(nn.Module):
    """Parametrization: weight -> its ``spec`` quantize-dequantize (straight-through backward)."""

    def __init__(self, spec: QuantSpec):
        super().__init__()
        self.spec = spec

    def forward(self, weight):
        return fake_quantize(weight, self.spec)


def quantizable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv2d and Linear layers by name, in forward order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def uniform_config(model: nn.Module, spec: QuantSpec, keep: tuple[str, ...] = ()) -> dict[str, QuantSpec]:
    """The same ``spec`` for every conv/linear layer except those named in ``keep``."""
    return {name: spec for name in quantizable_layers(model) if name not in keep}


def apply_weight_quant(model: nn.Module, config: dict[str, QuantSpec]) -> nn.Module:
    """Fake-quantize the weight of each layer named in ``config`` (in place; returns ``model``)."""
    layers = quantizable_layers(model)
    for name, spec in config.items():
        parametrize.register_parametrization(layers[name], "weight", WeightFakeQuant(spec))
    return model


def bake(model: nn.Module) -> nn.Module:
    """Replace each fake-quantized weight by its rounded value and drop the parametrizations."""
    for module in quantizable_layers(model).values():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
