"""Original vs 70%-unstructured vs 70%-structured VGG-11: accuracy, real file sizes, latency.

Sizes are bytes of files written to checkpoints/<dataset>-<profile>/export/: the dense
state_dict of each model, and a compact form (bitmask + non-zero values for the unstructured
model; the smaller dense model for the structured one; the original has no compact form beyond
its dense one). Latency: fp32, channels_last, on this run's device and thread count, batch 1 and
a larger batch; models take turns over several rounds of (warm-up, median of repeated runs)
and the median round is reported.

Writes results/<dataset>-<profile>/pruning/pruned_models.csv (one row per model and batch size).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import torch  # noqa: E402

from common.baselines import get_baseline  # noqa: E402
from common.checkpoints import checkpoint_path  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.measure import measure_latency, saved_size_bytes  # noqa: E402
from common.results import write_results  # noqa: E402
from pruning.methods import count_nonzero_parameters, overall_sparsity, to_bitmask_state  # noqa: E402
from pruning.study import TASK, get_structured_final, get_unstructured_final, test_accuracy  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per latency reading")
    parser.add_argument("--rounds", type=int, default=3, help="latency readings per model, taken in turns (odd)")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    base, base_meta = get_baseline(ctx, "vgg11")
    unstructured, u_meta = get_unstructured_final(ctx)
    structured, s_meta = get_structured_final(ctx)
    export = checkpoint_path(ctx.dataset, ctx.profile.name, "export").with_suffix("")
    entries = [("original", base, None, base.state_dict()),
               ("unstructured", unstructured, u_meta, to_bitmask_state(unstructured.state_dict())),
               ("structured", structured, s_meta, structured.state_dict())]
    formats = {"original": "dense state_dict", "unstructured": "bitmask + non-zero values",
               "structured": "dense state_dict of the smaller model"}
    models, info = {}, {}
    for name, model, meta, compact in entries:
        models[name] = model.to(ctx.device).eval().to(memory_format=torch.channels_last)
        acc = test_accuracy(model, ctx)["top1_acc"]
        info[name] = {"model": name, "overall_sparsity": round(overall_sparsity(model), 4),
                      "params_nonzero": count_nonzero_parameters(model),
                      "top1_before_finetune": round(meta["top1_before_finetune"] if meta else acc, 2),
                      "top1_acc": round(acc, 2),
                      "size_bytes_dense": saved_size_bytes(model.state_dict(), export / f"{name}_dense.pt"),
                      "size_bytes_compact": saved_size_bytes(compact, export / f"{name}_compact.pt"),
                      "compact_format": formats[name]}
    # Latency: the models take turns over several rounds, so drifts of the machine hit all alike;
    # each reading is a median after warm-up, and the reported one is the median round.
    readings = {(name, b): [] for name in models for b in args.batch_sizes}
    for _ in range(args.rounds):
        for (name, batch), found in readings.items():
            x = torch.randn(batch, 3, 32, 32, device=ctx.device).contiguous(memory_format=torch.channels_last)
            found.append(measure_latency(models[name], x, warmup=5, repeats=args.repeats))
    rows = []
    for (name, _), found in readings.items():
        median = sorted(found, key=lambda r: r["latency_ms"])[len(found) // 2]
        rows.append({**info[name], **{k: round(v, 4) if isinstance(v, float) else v for k, v in median.items()}})
    for r in rows:
        print(f"{r['model']} batch={r['batch_size']}: top1={r['top1_acc']}% dense={r['size_bytes_dense']}B "
              f"compact={r['size_bytes_compact']}B latency={r['latency_ms']:.3f}ms")
    write_results(rows, ctx.results_dir(TASK) / "pruned_models.csv",
                  ctx.provenance(latency_dtype="float32, channels_last", export_dir=str(export)))


if __name__ == "__main__":
    main()
