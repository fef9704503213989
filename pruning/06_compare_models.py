"""Original vs 70%-unstructured vs 70%-structured VGG-11: accuracy, real file sizes, latency.

Sizes are bytes of files written to checkpoints/<dataset>-<profile>/export/: the dense
state_dict of each model, and a compact form (bitmask + non-zero values for the unstructured
model; the smaller dense model for the structured one; the original has no compact form beyond
its dense one). Latency: fp32, channels_last, on this run's device and thread count, batch 1 and
a larger batch, warm-up then the median of repeated runs.

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
    rows = []
    for name, model, meta, compact in entries:
        model = model.to(ctx.device).eval().to(memory_format=torch.channels_last)
        dense_bytes = saved_size_bytes(model.state_dict(), export / f"{name}_dense.pt")
        compact_bytes = saved_size_bytes(compact, export / f"{name}_compact.pt")
        acc = test_accuracy(model, ctx)["top1_acc"]
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, 32, 32, device=ctx.device).contiguous(memory_format=torch.channels_last)
            lat = measure_latency(model, x, warmup=5, repeats=args.repeats)
            rows.append({"model": name, "overall_sparsity": round(overall_sparsity(model), 4),
                         "params_nonzero": count_nonzero_parameters(model),
                         "top1_before_finetune": round(meta["top1_before_finetune"], 2) if meta else round(acc, 2),
                         "top1_acc": round(acc, 2), "size_bytes_dense": dense_bytes,
                         "size_bytes_compact": compact_bytes, "compact_format": formats[name],
                         **{k: round(v, 4) if isinstance(v, float) else v for k, v in lat.items()}})
            print(f"{name} batch={batch}: top1={acc:.2f}% dense={dense_bytes}B compact={compact_bytes}B "
                  f"latency={lat['latency_ms']:.3f}ms")
    write_results(rows, ctx.results_dir(TASK) / "pruned_models.csv",
                  ctx.provenance(latency_dtype="float32, channels_last", export_dir=str(export)))


if __name__ == "__main__":
    main()
