"""The pruning study's experiments, shared by the numbered scripts in ``pruning/``.

Sensitivity sweeps, the rule that turns a sweep into per-layer ratios, masked / structured
fine-tuning, and the cached final models. Every tuned choice is made on the validation split;
accuracy is reported on the test split.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from common.baselines import finetune_recipe, get_baseline
from common.cache import KEY, weights_sha256
from common.checkpoints import save_checkpoint
from common.curves import curve_rows, write_curves
from common.cli import RunContext
from common.errors import UserError
from common.models import VGG, count_parameters
from common.numerics import machine_kind
from common.results import write_results
from common.training import fit
from pruning import kinds
from pruning.kinds import CHANNEL_GRID, FINAL_TARGET, SPARSITY_GRID, KindNames
from common.figures import paper_layer_names
from pruning.plots import plot_sensitivity
from pruning.methods import (channel_prune, layer_sparsity, magnitude_mask, overall_sparsity,
                             prunable_layers, prune_by_magnitude, remove_masks)

TASK = "pruning"
# SPARSITY_GRID, CHANNEL_GRID and FINAL_TARGET (70%: the pruned models every later stage reads)
# are declared in pruning.kinds, with the kinds' names, for the command lines.


def val_top1(model: VGG, ctx: RunContext) -> float:
    """Top-1 (%) on the validation split (every tuned choice uses this)."""
    return ctx.evaluate(model, "val")["top1_acc"]


def test_accuracy(model: VGG, ctx: RunContext) -> dict:
    """Top-1/top-5 (%) on the test split."""
    return ctx.evaluate(model, "test")


# ----------------------------------------------------------------------------- sensitivity


@torch.no_grad()
def unstructured_sensitivity(model: VGG, ctx: RunContext,
                             grid: Sequence[float] = SPARSITY_GRID) -> list[dict]:
    """Each conv/linear layer magnitude-pruned alone at each sparsity; validation top-1 (%).

    Rows: layer (module name, the key every reader prunes by), layer_name (the paper's name:
    conv1.., fc1..), sparsity, params, top1_acc. The model is restored after every reading.
    """
    rows = []
    layers = prunable_layers(model)
    names = paper_layer_names(layers)
    for name, module in tqdm(layers, desc="unstructured sensitivity", disable=not ctx.progress):
        original = module.weight.detach().clone()
        for s in grid:
            module.weight.mul_(magnitude_mask(original, s))
            rows.append({"layer": name, "layer_name": names[name], "sparsity": s, "params": original.numel(),
                         "top1_acc": val_top1(model, ctx)})
            module.weight.copy_(original)
    return rows


def structured_sensitivity(model: VGG, ctx: RunContext,
                           grid: Sequence[float] = CHANNEL_GRID) -> list[dict]:
    """Each conv's output channels pruned alone at each ratio (no fine-tune); validation top-1 (%).

    Rows: layer (module name), layer_name (the paper's: conv1..), ratio, channels_before,
    channels_after, params_fraction, top1_acc.
    """
    convs = model.convs()
    names = paper_layer_names(prunable_layers(model))
    total = count_parameters(model)
    rows = []
    for i, (name, conv) in enumerate(tqdm(list(zip(conv_names(model), convs)), desc="structured sensitivity",
                                          disable=not ctx.progress)):
        for r in grid:
            ratios = [0.0] * len(convs)
            ratios[i] = r
            small = channel_prune(model, ratios)
            rows.append({"layer": name, "layer_name": names[name], "ratio": r, "channels_before": conv.out_channels,
                         "channels_after": small.convs()[i].out_channels,
                         "params_fraction": count_parameters(small) / total,
                         "top1_acc": val_top1(small, ctx)})
    return rows


# ----------------------------------------------------------------------------- ratio rule


def sensitivity_curves(rows: list[dict], x_key: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """layer -> (x values with 0 prepended, validation top-1 at each x) from sweep rows."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        curves.setdefault(r["layer"], []).append((float(r[x_key]), float(r["top1_acc"])))
    return {k: (np.array([0.0] + [x for x, _ in sorted(v)]), np.array([np.nan] + [a for _, a in sorted(v)]))
            for k, v in curves.items()}


TIE_SLOPE = 1e-3  # points of accuracy charged per unit ratio, so flat curves still order ratios


def ratio_at_drop(xs: np.ndarray, drops: np.ndarray, budget: float) -> float:
    """Largest x whose accuracy drop stays within ``budget`` points.

    ``xs`` ascending with xs[0] = 0 and drops[0] = 0. The drop curve is made monotone (running
    maximum of the non-negative drops) and given a tiny slope ``TIE_SLOPE * x``, so that layers
    whose sweep is flat (no measurable drop) are pruned gradually and together instead of jumping
    to the last grid value; x is interpolated linearly between grid points and capped at the last.
    """
    envelope = np.maximum.accumulate(np.maximum(drops, 0.0)) + TIE_SLOPE * xs
    above = np.nonzero(envelope > budget)[0]
    if len(above) == 0:
        return float(xs[-1])
    k = int(above[0])
    if k == 0:
        return 0.0
    lo_x, hi_x, lo_d, hi_d = xs[k - 1], xs[k], envelope[k - 1], envelope[k]
    return float(lo_x + (budget - lo_d) / (hi_d - lo_d) * (hi_x - lo_x))


def ratios_for_target(curves: dict[str, tuple[np.ndarray, np.ndarray]], base_acc: float,
                      achieved: Callable[[dict[str, float]], float], target: float,
                      tolerance: float = 1e-4) -> tuple[dict[str, float], float]:
    """The equal-accuracy-drop rule: one drop budget ``delta`` (points of validation top-1) for
    every layer; each layer takes the largest ratio whose single-layer drop is within ``delta``.
    ``delta`` is bisected until ``achieved(ratios)`` (e.g. overall sparsity) reaches ``target``.

    Returns (layer -> ratio, delta). Raises ``UserError`` if the target is out of reach.
    """
    def ratios(delta: float) -> dict[str, float]:
        out = {}
        for layer, (xs, accs) in curves.items():
            drops = np.concatenate([[0.0], base_acc - accs[1:]])
            out[layer] = ratio_at_drop(xs, drops, delta)
        return out

    hi = max(float(base_acc - np.nanmin(a)) for _, a in curves.values()) + 1.0
    if achieved(ratios(hi)) < target - tolerance:
        raise UserError(f"target {target:g} is out of reach: the sweep's largest ratios give "
                        f"{achieved(ratios(hi)):.4g}; lower the target, or extend the sensitivity sweep's --grid")
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if achieved(ratios(mid)) < target:
            lo = mid
        else:
            hi = mid
    return ratios(hi), hi


def overall_sparsity_of(model: VGG) -> Callable[[dict[str, float]], float]:
    """Overall conv+linear sparsity that ``prune_by_magnitude(model, ratios)`` would give."""
    sizes = {n: m.weight.numel() for n, m in prunable_layers(model)}
    total = sum(sizes.values())
    return lambda r: sum(round(r.get(n, 0.0) * k) for n, k in sizes.items()) / total


def params_reduction_of(model: VGG) -> Callable[[dict[str, float]], float]:
    """Fraction of parameters that ``channel_prune(model, ratios)`` would remove."""
    names, total = conv_names(model), count_parameters(model)
    return lambda r: 1 - count_parameters(channel_prune(model, [r[n] for n in names])) / total


# ----------------------------------------------------------------------------- fine-tuning


def finetune_and_measure(model: VGG, ctx: RunContext, epochs: int | None, desc: str) -> dict:
    """Fine-tune a freshly pruned ``model`` in place; top-1 (%) before and after, on val and test."""
    metrics = {"val_top1_before_finetune": val_top1(model, ctx),
               "top1_before_finetune": test_accuracy(model, ctx)["top1_acc"]}
    recipe = finetune_recipe(ctx, epochs)
    history = fit(model, ctx.splits, recipe, ctx.device, progress=ctx.progress, desc=desc,
                  resume=ctx.resume_file(desc), resume_key=ctx.artefact_key({}, code_of=__name__))
    remove_masks(model)  # a no-op for channel-pruned models
    test = test_accuracy(model.eval(), ctx)
    return {**metrics, "val_top1_acc": history[-1]["val_top1_acc"], "top1_acc": test["top1_acc"],
            "top5_acc": test["top5_acc"], "finetune_epochs": recipe.epochs, "history": history}


def prune_unstructured_and_finetune(base: VGG, ctx: RunContext, ratios: dict[str, float],
                                    epochs: int | None = None, desc: str = "finetune"
                                    ) -> tuple[VGG, dict]:
    """Copy ``base``, magnitude-prune each layer to ``ratios[layer]``, fine-tune with the masks in
    place, bake the zeros in. Returns (dense model with zeros, ``finetune_and_measure`` metrics
    plus overall_sparsity)."""
    model = prune_by_magnitude(copy.deepcopy(base), ratios)
    metrics = finetune_and_measure(model, ctx, epochs, desc)
    return model, {**metrics, "overall_sparsity": overall_sparsity(model)}


def prune_channels_and_finetune(base: VGG, ctx: RunContext, ratios: dict[str, float],
                                epochs: int | None = None, desc: str = "finetune"
                                ) -> tuple[VGG, dict]:
    """``channel_prune`` each conv of ``base`` by ``ratios[layer]``, then fine-tune. Returns
    (smaller model, ``finetune_and_measure`` metrics plus params_fraction of the original)."""
    model = channel_prune(base, [ratios[name] for name in conv_names(base)])
    metrics = finetune_and_measure(model, ctx, epochs, desc)
    return model, {**metrics, "params_fraction": count_parameters(model) / count_parameters(base)}


def conv_names(model: VGG) -> list[str]:
    """Names of the conv layers, in forward order (the keys of channel-pruning ratios)."""
    return [n for n, m in prunable_layers(model) if isinstance(m, torch.nn.Conv2d)]


# ----------------------------------------------------------------------------- final models


@dataclass(frozen=True)
class PruningKind(KindNames):
    """What differs between unstructured and channel pruning; the pipeline around it is shared.
    Its names and grid (``name``, ``x_key``, ``target_key``, ``grid``) are ``pruning.kinds``'."""

    sweep: Callable[..., list[dict]]                       # (base, ctx, grid) -> sweep rows
    achieved: Callable[[VGG], Callable[[dict], float]]     # base -> (ratios -> achieved target)
    prune_and_finetune: Callable[..., tuple[VGG, dict]]    # (base, ctx, ratios, epochs, desc)
    xlabel: str
    title: str


UNSTRUCTURED = PruningKind(
    **asdict(kinds.UNSTRUCTURED), sweep=unstructured_sensitivity,
    achieved=overall_sparsity_of, prune_and_finetune=prune_unstructured_and_finetune,
    xlabel="sparsity of the layer (others dense)", title="VGG-11 unstructured sensitivity")
STRUCTURED = PruningKind(
    **asdict(kinds.STRUCTURED), sweep=structured_sensitivity,
    achieved=params_reduction_of, prune_and_finetune=prune_channels_and_finetune,
    xlabel="fraction of the conv's output channels removed (others intact)",
    title="VGG-11 channel-pruning sensitivity")


def sweep_key(ctx: RunContext, kind: PruningKind, grid: Sequence[float], base: VGG) -> dict:
    """The key (``common.cache``) of a sensitivity sweep: kind, split and grid, the data, the
    sha256 of the baseline's weights and this module's code."""
    return ctx.artefact_key({"kind": kind.name, "split": "val", "grid": sorted(set(grid))},
                            {"base model": weights_sha256(base)}, __name__)


def run_sensitivity(ctx: RunContext, kind: PruningKind, grid: Sequence[float] | None = None
                    ) -> list[dict]:
    """Sweep the VGG-11 baseline, write ``<kind>_sensitivity.csv`` (its key in the sidecar) and
    its figure, return the rows."""
    grid = sorted(set(grid or kind.grid))
    base, _ = get_baseline(ctx, "vgg11")
    base_val = val_top1(base, ctx)
    rows = kind.sweep(base, ctx, grid)
    out = ctx.results_dir(TASK)
    write_results(rows, out / f"{kind.name}_sensitivity.csv",
                  ctx.provenance(**{KEY: sweep_key(ctx, kind, grid, base)}, grid=grid, base_val_top1=base_val))
    plot_sensitivity(rows, kind.x_key, base_val, out / f"{kind.name}_sensitivity.png", kind.xlabel, kind.title)
    return rows


def ratio_rule(ctx: RunContext, kind: PruningKind, base: VGG
               ) -> tuple[Callable[[float], tuple[dict[str, float], float]], float]:
    """The equal-drop rule of ``kind`` on the sweep of ``base`` over ``kind.grid``.

    The sweep is read from ``<kind>_sensitivity.csv`` when that file was made under the same key
    (``sweep_key``), else swept again in memory: the file is the sensitivity stage's output, which
    no other stage writes. Returns (target -> (per-layer ratios, delta), the baseline's validation
    top-1 that the drops are measured from); sweep and baseline are read once, whatever the targets.
    """
    rows = ctx.stored_rows(TASK, f"{kind.name}_sensitivity.csv", sweep_key(ctx, kind, kind.grid, base),
                           verb="sweeping again in memory (the sensitivity stage writes the file)")
    rows = rows if rows is not None else kind.sweep(base, ctx, sorted(set(kind.grid)))
    curves, base_val, achieved = sensitivity_curves(rows, kind.x_key), val_top1(base, ctx), kind.achieved(base)
    return (lambda target: ratios_for_target(curves, base_val, achieved, target)), base_val


def final_name(kind_name: str, target: float = FINAL_TARGET, seed: int = 0) -> str:
    """The checkpoint name of a pruned final VGG-11: ``vgg11_<kind><pct>_seed<seed>``."""
    return f"vgg11_{kind_name}{round(target * 100)}_seed{seed}"


def get_final(ctx: RunContext, kind: PruningKind, target: float = FINAL_TARGET, force: bool = False
              ) -> tuple[VGG, dict]:
    """The VGG-11 pruned to ``target`` by the equal-drop rule and fine-tuned: cached or made.

    ``target`` is the overall sparsity (unstructured) or the fraction of parameters removed
    (structured). Cached as ``checkpoints/<dataset>-<profile>/vgg11_<kind><pct>_seed<seed>.pt``;
    meta holds the per-layer ratios, the drop budget delta and the accuracies.
    """
    name = final_name(kind.name, target, ctx.seed)
    base, _ = get_baseline(ctx, "vgg11")
    path = ctx.checkpoint(name)
    key = ctx.artefact_key({kind.target_key: target, "grid": list(kind.grid),
                            "recipe": finetune_recipe(ctx).cache_key()}, {"base model": weights_sha256(base)}, __name__)
    if not force and (hit := ctx.cached_checkpoint(name, key)):
        return hit
    rule, base_val = ratio_rule(ctx, kind, base)
    ratios, delta = rule(target)
    model, metrics = kind.prune_and_finetune(base, ctx, ratios, desc=name)
    meta = {"dataset": ctx.dataset, "profile": ctx.profile.name, KEY: key, "machine": machine_kind(ctx.device),
            "ratios": ratios, "delta_points": delta, "base_val_top1": base_val, **metrics}
    save_checkpoint(path, model, meta)
    return model, meta


def get_unstructured_final(ctx: RunContext, target: float = FINAL_TARGET, force: bool = False):
    """``get_final`` for unstructured pruning to ``target`` overall sparsity."""
    return get_final(ctx, UNSTRUCTURED, target, force)


def get_structured_final(ctx: RunContext, reduction: float = FINAL_TARGET, force: bool = False):
    """``get_final`` for channel pruning removing ``reduction`` of the parameters."""
    return get_final(ctx, STRUCTURED, reduction, force)


def final_rows(kind: PruningKind, base: VGG, model: VGG, meta: dict) -> list[dict]:
    """Per-layer rows of ``<kind>_final.csv`` (layer: module name; layer_name: the paper's): the
    chosen ratio and what it did to the layer."""
    names = paper_layer_names(prunable_layers(base))
    if kind is UNSTRUCTURED:
        return [{"layer": r["layer"], "layer_name": names[r["layer"]],
                 "chosen_sparsity": round(meta["ratios"][r["layer"]], 4),
                 "params": r["params"], "zeros": r["zeros"], "sparsity": round(r["sparsity"], 4)}
                for r in layer_sparsity(model)]
    return [{"layer": n, "layer_name": names[n], "ratio": round(meta["ratios"][n], 4),
             "channels_before": b.out_channels, "channels_after": s.out_channels}
            for n, b, s in zip(conv_names(base), base.convs(), model.convs())]


def write_final(ctx: RunContext, kind: PruningKind, target: float, force: bool = False) -> dict:
    """Make (or load) the final model, write ``<kind>_final.csv`` with the rule's summary in its
    provenance, and return that summary (delta, accuracies before/after fine-tune, size measure)."""
    base, _ = get_baseline(ctx, "vgg11")
    model, meta = get_final(ctx, kind, target, force=force)
    keys = ("delta_points", "base_val_top1", "val_top1_before_finetune", "top1_before_finetune",
            "val_top1_acc", "top1_acc", "overall_sparsity", "params_fraction", "finetune_epochs")
    summary = {k: meta[k] for k in keys if k in meta}
    write_results(final_rows(kind, base, model, meta), ctx.results_dir(TASK) / f"{kind.name}_final.csv",
                  ctx.provenance(**{kind.target_key: target}, rule="equal validation-accuracy drop",
                                 **summary))
    write_curves(curve_rows(final_name(kind.name, target, ctx.seed), meta.get("history", [])),
                 ctx.results_dir(TASK) / f"{kind.name}_final_curves.csv", ctx.provenance(**{kind.target_key: target}))
    print(" ".join(f"{k}={v:.4g}" for k, v in summary.items()))
    return summary
