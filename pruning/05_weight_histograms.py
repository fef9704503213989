"""Weight distributions of every conv/linear layer of VGG-11 before pruning and after each kind
of pruning (the fine-tuned final models of 02 and 04; trained or loaded from cache).

Writes results/<dataset>-<profile>/pruning/weight_histograms.png (unstructured),
weight_histograms_structured.png, and weight_stats.csv (model, layer, layer_name, params, nonzero, mean_abs,
std, max_abs).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402


def weight_stats(model_name, model):
    """One row per conv/linear layer (module name and the paper's name: conv1.., fc1..): params,
    nonzero, mean |w|, std and max |w| of non-zeros."""
    from common.figures import paper_layer_names
    from pruning.methods import prunable_layers

    rows = []
    layers = prunable_layers(model)
    names = paper_layer_names(layers)
    for layer, m in layers:
        w = m.weight.detach().flatten()
        nz = w[w != 0]
        rows.append({"model": model_name, "layer": layer, "layer_name": names[layer], "params": w.numel(),
                     "nonzero": nz.numel(),
                     "mean_abs": round(nz.abs().mean().item(), 6), "std": round(nz.std().item(), 6),
                     "max_abs": round(nz.abs().max().item(), 6)})
    return rows


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(description=__doc__))
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.baselines import get_baseline
    from common.cli import RunContext
    from common.results import write_results
    from pruning.methods import prunable_layers
    from pruning.plots import plot_weight_histograms
    from pruning.study import TASK, get_structured_final, get_unstructured_final

    ctx = RunContext.from_args(args)
    base, _ = get_baseline(ctx, "vgg11")
    unstructured, _ = get_unstructured_final(ctx)
    structured, _ = get_structured_final(ctx)
    out = ctx.results_dir(TASK)
    models = {"original": base, "unstructured": unstructured, "structured": structured}
    layers = {k: prunable_layers(m) for k, m in models.items()}
    plot_weight_histograms([(n, a.weight, b.weight) for (n, a), (_, b) in
                            zip(layers["original"], layers["unstructured"])],
                           out / "weight_histograms.png", "original", "unstructured, fine-tuned (non-zeros)",
                           "VGG-11 weights before / after unstructured pruning")
    plot_weight_histograms([(n, a.weight, b.weight) for (n, a), (_, b) in
                            zip(layers["original"], layers["structured"])],
                           out / "weight_histograms_structured.png", "original",
                           "channel-pruned, fine-tuned", "VGG-11 weights before / after channel pruning")
    rows = [row for name, model in models.items() for row in weight_stats(name, model)]
    write_results(rows, out / "weight_stats.csv", ctx.provenance())


if __name__ == "__main__":
    main()
