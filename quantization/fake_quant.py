"""Quantization schemes applied to a model as configs (in the manner of torchao's ``quantize_``).

A ``Scheme`` maps layer names to a weight format and, optionally, an input-activation format.
Weights get a ``torch.nn.utils.parametrize`` parametrization: the module keeps its fp32 weight
(what the optimizer updates in QAT) and every forward sees the weight rounded to its grid, with
straight-through gradients; activations get an ``ActFakeQuant`` in front of the layer. This
covers Conv2d, which torchao's k-bit configs do not. Accuracy measured this way is simulated:
the arithmetic still runs in floating point. ``bake`` leaves the rounded weights in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from quantization.activations import ActSpec, attach_act_quant, calibrate_activations
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


@torch.no_grad()
def observe_layer_inputs(model: nn.Module, batches: Iterable[torch.Tensor],
                         observe: Callable[[str, torch.Tensor], None]) -> None:
    """Run ``batches`` through ``model`` in eval mode, calling ``observe(layer name, input)``
    with the input of every conv/linear layer; the hooks are removed afterwards."""
    hooks = [layer.register_forward_pre_hook(lambda _, args, name=name: observe(name, args[0]))
             for name, layer in quantizable_layers(model).items()]
    try:
        model.eval()
        for batch in batches:
            model(batch)
    finally:
        for h in hooks:
            h.remove()


@dataclass(frozen=True)
class Scheme:
    """Per-layer formats: ``weights[name]`` for the layer's weight, ``activations[name]`` for
    its input. Layers absent from a dict stay in fp32."""

    weights: dict[str, QuantSpec]
    activations: dict[str, ActSpec] = field(default_factory=dict)


def uniform_config(model: nn.Module, spec, keep: Iterable[str] = ()) -> dict:
    """The same ``spec`` for every conv/linear layer except those named in ``keep``."""
    keep = set(keep)
    return {name: spec for name in quantizable_layers(model) if name not in keep}


def uniform_scheme(model: nn.Module, weights: QuantSpec | None, activations: ActSpec | None = None,
                   keep: Iterable[str] = ()) -> Scheme:
    """``weights`` (and ``activations``) on every conv/linear layer except those in ``keep``."""
    keep = tuple(keep)
    return Scheme(uniform_config(model, weights, keep) if weights else {},
                  uniform_config(model, activations, keep) if activations else {})


def apply_weight_quant(model: nn.Module, config: dict[str, QuantSpec]) -> nn.Module:
    """Fake-quantize the weight of each layer named in ``config`` (in place; returns ``model``)."""
    layers = quantizable_layers(model)
    for name, spec in config.items():
        parametrize.register_parametrization(layers[name], "weight", WeightFakeQuant(spec))
    return model


def apply_scheme(model: nn.Module, scheme: Scheme,
                 calibration: Iterable[torch.Tensor] | None = None) -> nn.Module:
    """Apply ``scheme`` to ``model`` in place. Activation formats need ``calibration`` batches
    (normalised images [B,3,H,W] from train/validation, never test), run in eval mode."""
    apply_weight_quant(model, scheme.weights)
    if scheme.activations:
        attach_act_quant(model, scheme.activations)
        if any(s.dtype in ("int", "pow2") for s in scheme.activations.values()):
            if calibration is None:
                raise ValueError("integer activation formats need calibration batches")
            calibrate_activations(model, calibration)
    return model


def bake(model: nn.Module) -> nn.Module:
    """Replace each fake-quantized weight by its rounded value and drop the parametrizations."""
    for module in quantizable_layers(model).values():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
