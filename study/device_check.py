"""One command that says whether the whole study runs on a device, and how fast it trains there.

    python -m study.device_check --device cuda --dataset cifar10 --data-dir /path/to/folder

1. Every stage of ``run_all.sh`` at the ``smoke`` profile on ``--device``, into a scratch
   results and checkpoints folder (removed afterwards unless ``--keep``), continuing past
   failures (``KEEP_GOING=1``): one line per stage -- stage, ok / failed, seconds, and for a
   failure the last line its output printed.
2. Training throughput (images/s) of VGG-11, VGG-16 and VGG-19 at full width, batch 128, with the
   study's trainer (``study.benchmark``: the clock is read only after the device synchronised),
   on CUDA with the eager and with the graphed step (``common.train_step``), then the aggregate
   VGG-11 throughput of 1, 2 and 4 processes training at once on the device (``--concurrent``).
3. On CUDA, whether the graphed step trains like the eager one (``study.graph_check``): VGG-11
   trained ``--check-steps`` steps from one initialisation on the same batches, eagerly twice
   (the second run measures the noise floor), graphed, and with a capture forced to fail (the
   step must fall back to training like a fresh eager step); the device check fails when a
   graphed run is off from the eager reference by more than ``graph_check.FACTOR`` times the floor.

``--only stages``, ``--only throughput`` or ``--only graph`` runs one part. They go to CSVs with
provenance under ``results/device_check/<dataset>-<device type>/`` (``stages.csv``,
``throughput.csv``, ``graph_check.csv``). The last line is
``device_check: N/M stages ok on <device name>`` (``device_check: throughput measured on <device
name>`` with ``--only throughput``, ``graph check done`` with ``--only graph``); the exit status is 1 when any stage or the graph check failed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from study.benchmark import concurrent_images_per_second, fast_images_per_second
from common.cli import RunContext
from common.flags import Parser, add_common_args
from study.graph_check import passed as graph_passed, step_agreement
from common.results import PROJECT_ROOT, device_description, provenance, results_root, write_results
from common.train_step import resolve_step_mode
from study.status import PREFIX, parse_status_lines

MODELS = ("vgg11", "vgg16", "vgg19")
BATCH = 128
def last_line(path: Path) -> str:
    """The last non-empty line of a log file ('' when there is none)."""
    if not path.exists():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_stages(device: str, dataset: str, data_dir: Path, scratch: Path) -> list[dict]:
    """Run run_all.sh at the smoke profile on ``device`` into ``scratch``; one row per stage:
    stage, status (ok | failed), seconds, error (the last line of a failed stage's output)."""
    logs = scratch / "logs"
    env = {**os.environ, "PROFILE": "smoke", "DATASET": dataset, "CIFAR_DIR": str(data_dir), "DEVICE": device,
           "RESULTS_DIR": str(scratch / "results"), "CHECKPOINT_DIR": str(scratch / "checkpoints"),
           "KEEP_GOING": "1", "FORCE": "1", "LOG_DIR": str(logs),
           "PYTHON": sys.executable}   # every stage runs with this interpreter, wherever PATH points
    lines = []
    with subprocess.Popen(["bash", str(PROJECT_ROOT / "run_all.sh")], env=env, cwd=PROJECT_ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:
            lines.append(line)
            if parse_status_lines(line):
                print(f"[device_check] {line.removeprefix(PREFIX).strip()}", flush=True)
    rows = parse_status_lines("".join(lines))
    for r in rows:
        r["error"] = last_line(logs / f"{r['stage'].replace('/', '_')}.log") if r["status"] == "failed" else ""
    if not rows:   # run_all.sh stopped before its first stage
        rows = [{"stage": "run_all.sh", "status": "failed", "seconds": 0,
                 "error": next((line.strip() for line in reversed(lines) if line.strip()), "")}]
    return rows


def training_throughput(ctx: RunContext, steps: int, warmup: int, modes: tuple[str, ...]) -> list[dict]:
    """Images/s of the trainer for each of MODELS at width 1.0 and batch 128 on ``ctx.device``,
    once per training-step mode of ``modes`` ('eager', 'graphed'; ``common.train_step``)."""
    rows = []
    for name in MODELS:
        for mode in modes:
            images_per_second = fast_images_per_second(ctx.but(train_step=mode), name, 1.0, BATCH, steps, warmup)
            print(f"[device_check] {name} width 1.0 batch {BATCH} {mode} step: "
                  f"{images_per_second:.0f} training images/s", flush=True)
            rows.append({"model": name, "width": 1.0, "batch_size": BATCH, "step": mode, "jobs": 1,
                         "concurrent": False,
                         "timed_steps": steps, "warmup_steps": warmup,
                         "train_images_per_second": round(images_per_second, 1),
                         "device": device_description(ctx.device)})
    return rows


def concurrent_throughput(ctx: RunContext, steps: int, warmup: int, counts: list[int]) -> list[dict]:
    """Aggregate VGG-11 training images/s (width 1.0, batch 128, the default step of the device)
    of 1, 2, 4... benchmark processes sharing ``ctx.device`` (``counts``)."""
    args = ["--model", "vgg11", "--width", "1.0", "--batch-size", str(BATCH), "--steps", str(steps),
            "--warmup", str(warmup), "--device", str(ctx.device), "--dataset", ctx.dataset,
            "--data-dir", str(ctx.data_dir), "--profile", "cpu", "--no-progress"]
    rows = []
    for n in counts:
        reading = concurrent_images_per_second(args, n)
        print(f"[device_check] vgg11 x{n} concurrent: {reading['aggregate_images_per_second']:.0f} "
              "training images/s in all", flush=True)
        rows.append({"model": "vgg11", "width": 1.0, "batch_size": BATCH,
                     "step": resolve_step_mode("auto", ctx.device), "jobs": n, "concurrent": True,
                     "timed_steps": steps,
                     "warmup_steps": warmup,
                     "train_images_per_second": round(reading["aggregate_images_per_second"], 1),
                     "device": device_description(ctx.device)})
    return rows


def refuse_unrunnable(args: argparse.Namespace) -> None:
    """One line (SystemExit) for the flags the device check cannot honour: it times the trainer as
    ``run_all.sh`` runs it, with every step mode of the device (eager, and graphed on CUDA), and a
    CUDA graph records the uncompiled model; its profiles are its own (smoke stages, the cpu
    profile's splits for the throughput)."""
    if args.compile:
        raise SystemExit("error: the device check times the trainer as run_all.sh runs it, eager and CUDA-graphed, "
                         "and a graphed step cannot be compiled: drop --compile (python -m study.benchmark "
                         "--compile times a compiled model)")
    if args.train_step != "auto":
        raise SystemExit(f"error: the device check times every training step mode of the device itself: "
                         f"drop --train-step {args.train_step}")
    if args.profile not in (None, "cpu"):
        raise SystemExit(f"error: the device check runs the stages at the smoke profile and times the cpu "
                         f"profile's splits: drop --profile {args.profile}")
    for flag, value in (("--steps", args.steps), ("--check-steps", args.check_steps)):
        if value is not None and value < 1:
            raise SystemExit(f"error: {flag} must be at least 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        raise SystemExit(f"error: --warmup must be 0 or more, got {args.warmup}")
    if any(n < 1 for n in args.concurrent or []):
        raise SystemExit(f"error: --concurrent takes process counts of 1 or more, got {args.concurrent}")


def main(argv: list[str] | None = None) -> int:
    parser = add_common_args(Parser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--steps", type=int, default=None,
                        help="timed training steps per model (default: 50 on CUDA, 3 on the CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 10 / 1)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch results and checkpoints")
    parser.add_argument("--check-steps", type=int, default=300,
                        help="training steps of the graphed-vs-eager check (CUDA only)")
    parser.add_argument("--only", choices=["stages", "throughput", "graph"], default=None,
                        help="run one of the two parts (default: both)")
    parser.add_argument("--concurrent", type=int, nargs="*", default=None,
                        help="also time VGG-11 with this many processes sharing the device "
                             "(default: 1 2 4 on CUDA, none on the CPU)")
    args = parser.parse_args(argv)
    refuse_unrunnable(args)
    # The throughput needs whole batches of real images: the 'cpu' profile's splits (all of train).
    args.profile = "cpu"
    ctx = RunContext.from_args(args)
    cuda = ctx.device.type == "cuda"
    steps = args.steps or (50 if cuda else 3)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    name = device_description(ctx.device)
    out = results_root() / "device_check" / f"{ctx.dataset}-{ctx.device.type}"
    started = time.time()
    stages = []
    if args.only in (None, "stages"):
        scratch = Path(tempfile.mkdtemp(prefix="device_check_"))
        try:
            stages = run_stages(str(ctx.device), ctx.dataset, ctx.data_dir.resolve(), scratch)
        finally:
            if not args.keep:
                shutil.rmtree(scratch, ignore_errors=True)
        prov = provenance("smoke", ctx.dataset, ctx.seed, ctx.device, started,
                          scratch=str(scratch) if args.keep else "")
        write_results(stages, out / "stages.csv", prov)
    if args.only in (None, "throughput"):
        # on CUDA the old (eager) and the new (graphed) step; on a CPU the default step is eager
        modes = ("eager", "graphed") if cuda else ("eager",)
        throughput = training_throughput(ctx, steps, warmup, modes)
        counts = args.concurrent if args.concurrent is not None else ([1, 2, 4] if cuda else [])
        throughput += concurrent_throughput(ctx, steps, warmup, counts)
        write_results(throughput, out / "throughput.csv",
                      provenance("cpu", ctx.dataset, ctx.seed, ctx.device, started))
    graph_ok = True
    if args.only in (None, "graph"):
        if cuda:
            images, labels = ctx.splits.split("train")
            check = step_agreement(images, labels, ctx.dataset, ctx.splits.num_classes, steps=args.check_steps)
            for r in check:
                verdict = "" if r["passed"] == "" else "  ok" if r["passed"] else "  FAILED"
                print(f"[device_check] graph check, {r['run']:22s} vs eager: max |param diff| "
                      f"{r['param_max_abs']:.3g}, |loss diff| {r['loss_abs']:.3g}{verdict}", flush=True)
            graph_ok = graph_passed(check)
            print(f"[device_check] graphed step {'trains like' if graph_ok else 'DIFFERS from'} the eager step "
                  f"(limit: {check[-1]['factor']:g}x the eager-vs-eager noise floor)", flush=True)
            write_results(check, out / "graph_check.csv", provenance("cpu", ctx.dataset, ctx.seed, ctx.device, started))
        else:
            print("[device_check] graph check: not applicable on a CPU (no CUDA graph is captured)")
    ok = sum(r["status"] == "ok" for r in stages)
    for r in stages:
        print(f"[device_check] {r['stage']:40s} {r['status']:7s} {r['seconds']:5d}s  {r['error']}")
    if stages:
        print(f"device_check: {ok}/{len(stages)} stages ok on {name}")
    else:
        part = {"throughput": "throughput measured", "graph": "graph check done"}.get(args.only, "done")
        print(f"device_check: {part} on {name}")
    return 0 if ok == len(stages) and graph_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
