"""Experiment 5: weight and activation outliers, and what clipping does about them.

Statistics per conv/linear layer of its weight and of its input activation (on calibration
images from the training split): absmax, standard deviation, kurtosis, percentiles of |x|, and
for weights the spread of per-channel maxima. Then quantizers with and without clipping --
uniform to the absmax, uniform clipped at the 99.99th and 99.9th percentile of |x|, and a
power-of-two (logarithmic) grid -- applied to weights (per output channel), activations (per
tensor) or both, at int8 and int4; and a per-layer experiment: one layer at a time at int4,
without clipping vs clipped, to show where clipping matters most.
"""

from __future__ import annotations

import torch
from torch import nn

from common.cli import RunContext
from quantization.activations import SAMPLES_PER_BATCH, ActFakeQuant, ActSpec
from quantization.fake_quant import Scheme, observe_layer_inputs, quantizable_layers
from quantization.quantizers import QuantSpec
from quantization.study import calibration_batches, quantized_copy, test_top1

# name -> (data type, clipping percentile or None)
QUANTIZERS = {
    "uniform, no clipping": ("int", None),
    "uniform, clip p99.99": ("int", 99.99),
    "uniform, clip p99.9": ("int", 99.9),
    "power-of-two, no clipping": ("pow2", None),
}
SCOPES = ("weights", "activations", "weights+activations")
BITS = (8, 4)
PER_LAYER_QUANTIZERS = ("uniform, no clipping", "uniform, clip p99.9")


def _kurtosis(x: torch.Tensor) -> float:
    x = x.double().flatten()
    centred = x - x.mean()
    return float(centred.pow(4).mean() / centred.pow(2).mean().pow(2))


def _percentile(x: torch.Tensor, q: float) -> float:
    return float(torch.quantile(x.float().flatten(), q / 100))


def input_samples(model: nn.Module, batches: list[torch.Tensor], seed: int = 0
                  ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Per layer: a random sample of its input values (float32 1-D, up to SAMPLES_PER_BATCH per
    batch, always including each batch's largest-magnitude value, so the sample's absmax is the
    exact absmax) and that absmax over all ``batches``."""
    samples = {name: [] for name in quantizable_layers(model)}
    absmax = dict.fromkeys(samples, 0.0)
    generator = torch.Generator().manual_seed(seed)

    def observe(name: str, x: torch.Tensor) -> None:
        flat = x.detach().float().flatten()
        absmax[name] = max(absmax[name], float(flat.abs().max()))
        pick = torch.randint(0, flat.numel(), (min(flat.numel(), SAMPLES_PER_BATCH),), generator=generator)
        pick[0] = flat.abs().argmax().cpu()
        samples[name].append(flat[pick.to(flat.device)].cpu())

    observe_layer_inputs(model, batches, observe)
    return {name: torch.cat(s) for name, s in samples.items()}, absmax


def statistics_rows(model: nn.Module, activations: dict[str, torch.Tensor],
                    act_absmax: dict[str, float]) -> list[dict]:
    """outliers_stats.csv: one row per layer with weight and input-activation statistics."""
    rows = []
    for name, layer in quantizable_layers(model).items():
        w = layer.weight.detach().float()
        channel_max = w.reshape(w.shape[0], -1).abs().amax(1)
        a = activations[name]
        rows.append({
            "layer": name, "weight_params": w.numel(),
            "weight_absmax": float(w.abs().max()), "weight_std": float(w.std()),
            "weight_absmax_over_std": float(w.abs().max() / w.std()),
            "weight_kurtosis": _kurtosis(w), "weight_p99_9": _percentile(w.abs(), 99.9),
            "weight_channel_max_over_median": float(channel_max.max() / channel_max.median()),
            "act_absmax": act_absmax[name], "act_std": float(a.std()),
            "act_p99_9": _percentile(a.abs(), 99.9), "act_p99_99": _percentile(a.abs(), 99.99),
            "act_absmax_over_p99_9": act_absmax[name] / max(_percentile(a.abs(), 99.9), 1e-12),
            "act_kurtosis": _kurtosis(a), "act_fraction_negative": float((a < 0).float().mean()),
            "act_samples": a.numel(),
        })
    return rows


def scheme(model: nn.Module, quantizer: str, bits: int, scope: str,
           layers: list[str] | None = None) -> Scheme:
    """The ``quantizer`` at ``bits`` on the ``scope`` of ``layers`` (default: all layers)."""
    dtype, percentile = QUANTIZERS[quantizer]
    names = layers or list(quantizable_layers(model))
    weights = {n: QuantSpec(bits, dtype=dtype, clip_percentile=percentile) for n in names} \
        if "weights" in scope else {}
    acts = {n: ActSpec(bits, dtype=dtype, clip_percentile=percentile) for n in names} \
        if "activations" in scope else {}
    return Scheme(weights, acts)


def quantizer_rows(model: nn.Module, ctx: RunContext) -> list[dict]:
    """outliers.csv: test top-1 for every quantizer x bits x scope, all layers quantized."""
    rows = []
    for bits in BITS:
        for scope in SCOPES:
            for quantizer in QUANTIZERS:
                top1 = test_top1(quantized_copy(model, scheme(model, quantizer, bits, scope), ctx), ctx)
                rows.append({"quantizer": quantizer, "bits": bits, "layer_scope": f"all layers, {scope}",
                             "weight_granularity": "per-channel" if "weights" in scope else "",
                             "activation_granularity": "per-tensor" if "activations" in scope else "",
                             "top1_acc": top1, "simulated": "yes"})
                print(f"[outliers] int{bits} {scope:20s} {quantizer:26s} top-1 {top1:.2f}%")
    return rows


def per_layer_rows(model: nn.Module, ctx: RunContext, bits: int = 4) -> list[dict]:
    """outliers_per_layer.csv: one layer at a time at ``bits`` (weights, then its input),
    without clipping and clipped, everything else fp32; test top-1 and the change."""
    rows = []
    base = test_top1(model, ctx)
    for layer in quantizable_layers(model):
        for scope in ("weights", "activations"):
            for quantizer in PER_LAYER_QUANTIZERS:
                top1 = test_top1(quantized_copy(model, scheme(model, quantizer, bits, scope, [layer]), ctx), ctx)
                rows.append({"layer": layer, "scope": scope, "quantizer": quantizer, "bits": bits,
                             "top1_acc": top1, "drop_points": round(base - top1, 2), "simulated": "yes"})
        print(f"[outliers] per-layer int{bits} {layer}: " + ", ".join(
            f"{r['scope']}/{r['quantizer']} {r['top1_acc']:.2f}" for r in rows[-4:]))
    return rows


def clipping_example(stats: list[dict], samples: dict[str, torch.Tensor]
                     ) -> tuple[str, dict[str, torch.Tensor]]:
    """The layer whose input has the largest max / p99.9 ratio, and its sampled input values
    after int4 quantization without clipping and clipped at p99.9 (calibrated on the sample)."""
    layer = max(stats, key=lambda r: r["act_absmax_over_p99_9"])["layer"]
    values, quantized = samples[layer], {}
    for name, percentile in (("int4, no clipping", None), ("int4, clip p99.9", 99.9)):
        q = ActFakeQuant(ActSpec(4, clip_percentile=percentile))
        q.observe(values)
        q.finish_calibration()
        quantized[name] = q(values)
    return layer, quantized


def outlier_inputs(model: nn.Module, ctx: RunContext) -> tuple[dict, dict]:
    """``input_samples`` on this run's calibration batches."""
    return input_samples(model, calibration_batches(ctx), ctx.seed)
