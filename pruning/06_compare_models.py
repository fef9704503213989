"""Original vs 70%-unstructured vs 70%-structured VGG-11: accuracy, real file sizes, latency.

Sizes are bytes of files written to checkpoints/<dataset>-<profile>/export/: the dense
state_dict of each model, and a compact form (bitmask + non-zero values for the unstructured
model; the smaller dense model for the structured one; the original has no compact form beyond
its dense one). Latency (common.timing): fp32, channels_last, eager (the kernels a pruned model
gets without a sparse backend), on this run's device and thread count, batch 1 and a larger
batch; every (model, batch) is timed in one session, warm-up then the median over rounds taken
in turns.

Writes results/<dataset>-<profile>/pruning/pruned_models.csv (one row per model and batch size).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(description=__doc__))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--rounds", type=int, default=30,
                        help="timing rounds (every model and batch size once per round, in turns)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    import torch
    from common.baselines import get_baseline
    from common.checkpoints import checkpoint_path
    from common.cli import RunContext
    from common.measure import count_macs, saved_size_bytes
    from common.models import count_parameters
    from common.results import write_results
    from common.timing import Timed, new_session_id, time_interleaved
    from pruning.methods import count_nonzero_parameters, overall_sparsity, to_bitmask_state
    from pruning.study import (TASK, get_structured_final, get_unstructured_final, test_accuracy,
                               val_top1)

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
                      "params": count_parameters(model), "params_nonzero": count_nonzero_parameters(model),
                      "macs": count_macs(model),
                      "top1_before_finetune": round(meta["top1_before_finetune"] if meta else acc, 2),
                      "val_top1_acc": round(val_top1(model, ctx), 2), "top1_acc": round(acc, 2),
                      "size_bytes_dense": saved_size_bytes(model.state_dict(), export / f"{name}_dense.pt"),
                      "size_bytes_compact": saved_size_bytes(compact, export / f"{name}_compact.pt"),
                      "compact_format": formats[name]}
    # Latency: every (model, batch) in one session, taking turns, so drifts of the machine hit all alike.
    generator = torch.Generator().manual_seed(ctx.seed)
    examples = {b: torch.randn(b, 3, 32, 32, generator=generator).to(ctx.device)
                .contiguous(memory_format=torch.channels_last) for b in args.batch_sizes}
    timed = time_interleaved({f"{name}@{b}": Timed(models[name], examples[b], "fp32 conv, eager")
                              for name in models for b in args.batch_sizes},
                             new_session_id("pruned_models"), warmup=5, rounds=args.rounds)
    rows = []
    for key, t in timed.items():
        name = key.split("@")[0]
        rows.append({**info[name], "batch_size": t["latency_batch"], "latency_ms": t["latency_ms"],
                     "device": t["latency_device"], **t})
    for r in rows:
        print(f"{r['model']} batch={r['batch_size']}: top1={r['top1_acc']}% dense={r['size_bytes_dense']}B "
              f"compact={r['size_bytes_compact']}B latency={r['latency_ms']:.3f}ms")
    write_results(rows, ctx.results_dir(TASK) / "pruned_models.csv",
                  ctx.provenance(latency_dtype="float32, channels_last", export_dir=str(export)))


if __name__ == "__main__":
    main()
