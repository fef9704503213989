"""Training throughput of the study's pipeline, and of a textbook pipeline for comparison.

    python -m study.benchmark --model vgg11 --width 1.0 --steps 20 --dataset cifar10 --data-dir /path/to/folder
    python -m study.benchmark ... --compare      # also time the textbook pipeline, print the ratio

``fast`` is the trainer itself (``common.training.fit``): the split held as uint8 tensors on the
device, batched crop/flip on tensors, channels_last, bf16 autocast where the device has fast bf16.
``textbook`` is the usual tutorial code: per-image PIL transforms in a DataLoader with 2
workers, fp32, NCHW. Both run the same model, batch size, optimizer and data. The last line is
``train_images_per_second=<float>`` of the ``--pipeline`` chosen (the fast one with ``--compare``),
the median over ``--rounds``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from common.cli import RunContext
from common.flags import Parser, add_common_args
from common.data import DATASETS
from common.models import build_model
from common.results import write_results
from common.timing import synchronize
from common.training import Recipe, fit, make_optimizer


def fast_images_per_second(ctx: RunContext, model_name: str, width: float, batch_size: int,
                           steps: int, warmup: int, window: dict | None = None,
                           start_at: float | None = None) -> float:
    """Images/s of ``fit`` training a fresh ``model_name`` at ``width`` (``timed_fit_images_per_second``),
    with ``ctx.train_step`` deciding how a step runs (on CUDA 'auto' is the graphed step, recorded
    during the warm-up)."""
    model = build_model(model_name, ctx.splits.num_classes, width)
    recipe = Recipe(epochs=1, batch_size=batch_size, compile=ctx.compile, seed=ctx.seed,
                    step=ctx.train_step)
    return timed_fit_images_per_second(ctx, model.to(ctx.device), recipe, steps, warmup,
                                       window=window, start_at=start_at)


def timed_fit_images_per_second(ctx: RunContext, model: torch.nn.Module, recipe: Recipe, steps: int,
                                warmup: int, window: dict | None = None, start_at: float | None = None,
                                **fit_kwargs) -> float:
    """Images/s of ``fit`` on ``model`` (on ``ctx.device``) with ``recipe`` over ``steps`` timed
    optimizer steps; ``fit_kwargs`` pass a loss, parameters, etc.

    The timed steps are steady ones only: they start after at least ``warmup`` untimed steps
    *and* once the step runner says it is steady (``EagerStep.steady``: for a graphed CUDA step,
    after its eager warm-up steps and the capture), so a capture is never on the clock, whatever
    ``warmup`` is. The clock is read after synchronising the device (on CUDA a step's launch
    returns before it runs): once when the timed steps start (before the first step with
    ``warmup`` 0, so fit's setup is then included) and once after the last. ``window``, when
    given, receives the wall-clock (``time.time``) start and end of the timed steps, so that
    readings of concurrent processes can be put on one time line; with ``start_at`` (a
    ``time.time`` value) the timed steps wait for that moment, so concurrent processes start
    together."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps >= 1 and warmup >= 0, got {steps} and {warmup}")
    clock: dict[str, float] = {}
    done = timed = 0

    def read_clock(key: str) -> None:
        synchronize(ctx.device)
        clock[key] = time.perf_counter()
        if window is not None:
            window[key] = time.time()

    def on_step(runner) -> bool:
        nonlocal done, timed
        done += 1
        if "start" not in clock:
            if done >= warmup and runner.steady:
                if start_at is not None:
                    synchronize(ctx.device)
                    time.sleep(max(0.0, start_at - time.time()))
                read_clock("start")
            return False
        timed += 1
        if timed == steps:
            read_clock("end")
            return True
        return False

    if warmup == 0:
        read_clock("start")
    fit(model, ctx.splits, recipe, ctx.device, eval_split=None, progress=False, on_step=on_step, **fit_kwargs)
    if "end" not in clock:
        raise RuntimeError(f"the training split gave too few steps for {steps} timed steps after "
                           f"the warm-up; lower --steps")
    return steps * recipe.batch_size / (clock["end"] - clock["start"])


def textbook_images_per_second(ctx: RunContext, model_name: str, width: float, batch_size: int,
                               steps: int, warmup: int, workers: int = 2) -> float:
    """Images/s of a per-image PIL + DataLoader pipeline, fp32, NCHW (the tutorial baseline)."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    spec = DATASETS[ctx.dataset]
    images = ctx.splits.train_images.cpu().permute(0, 2, 3, 1).numpy()  # [N,32,32,3] uint8
    labels = ctx.splits.train_labels.cpu().tolist()
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(spec["mean"], spec["std"])])

    class PilDataset(Dataset):
        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return tf(Image.fromarray(images[i])), labels[i]

    loader = DataLoader(PilDataset(), batch_size=batch_size, shuffle=True, num_workers=workers,
                        drop_last=True, pin_memory=ctx.device.type == "cuda", persistent_workers=False)
    model = build_model(model_name, ctx.splits.num_classes, width).to(ctx.device).train()
    optimizer = make_optimizer(model.parameters(), Recipe(epochs=1))
    start = None
    for step, (x, y) in enumerate(loader):
        if step == warmup:
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        if step == warmup + steps:
            break
        x, y = x.to(ctx.device, non_blocking=True), y.to(ctx.device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def concurrent_images_per_second(benchmark_args: list[str], processes: int,
                                 start_after: float = 60.0) -> dict:
    """Aggregate training images/s of ``processes`` copies of this benchmark run together
    (each ``python -m study.benchmark *benchmark_args``, one model on one device).

    Every process warms up, then waits for one common moment (``start_after`` seconds from now)
    to start its timed steps, and reports that window on the wall clock. The aggregate is all
    their timed images over the span from the first start to the last end, so a process that
    starts late (still warming up at that moment) or finishes early counts against it. Returns
    processes, aggregate_images_per_second, and each process's own images/s (list)."""
    cmd = [sys.executable, "-m", "study.benchmark", *benchmark_args, "--print-window",
           "--start-at", f"{time.time() + start_after:.3f}"]
    running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(processes)]
    windows = []
    for proc in running:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"a concurrent benchmark process failed: {err.strip().splitlines()[-1:]}")
        line = next(x for x in out.splitlines() if x.startswith("window="))
        start, end, images = (float(v) for v in line.split("=")[1].split(","))
        windows.append((start, end, images))
    span = max(w[1] for w in windows) - min(w[0] for w in windows)
    return {"processes": processes,
            "aggregate_images_per_second": sum(w[2] for w in windows) / span,
            "per_process_images_per_second": [w[2] / (w[1] - w[0]) for w in windows]}


def _reading_in_subprocess(argv: list[str] | None, pipeline: str) -> float:
    """Run this benchmark for one pipeline in a new process and return its images/s."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--compare"]
    cmd = [sys.executable, "-m", "study.benchmark", *args, "--pipeline", pipeline, "--rounds", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1].split("=")[1])


def main(argv: list[str] | None = None) -> None:
    parser = add_common_args(Parser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--model", default="vgg11")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before timing")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pipeline", choices=["fast", "textbook"], default="fast")
    parser.add_argument("--compare", action="store_true",
                        help="time both pipelines and print textbook, fast and their ratio")
    parser.add_argument("--print-window", action="store_true",
                        help="also print window=<start>,<end>,<images> (wall clock) of the timed steps")
    parser.add_argument("--start-at", type=float, default=None,
                        help="with --print-window: start the timed steps at this time.time() value")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat each timing (alternating pipelines with --compare); report the median")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    if len(ctx.splits.train_images) < (args.warmup + args.steps) * args.batch_size:
        raise SystemExit("not enough training images for warmup+steps batches; lower --steps")
    common = (ctx, args.model, args.width, args.batch_size, args.steps, args.warmup)
    print(f"[benchmark] {args.model} width={args.width} batch={args.batch_size} "
          f"steps={args.steps} threads={torch.get_num_threads()} device={ctx.device}")
    if args.compare:
        # Each reading runs in a fresh process, alternating pipelines, so that neither inherits
        # the other's worker processes, allocator state or warm caches.
        runs = {"textbook": [], "fast": []}
        for r in range(args.rounds):
            for pipeline in runs:
                runs[pipeline].append(_reading_in_subprocess(argv, pipeline))
            print(f"round {r + 1}: textbook={runs['textbook'][-1]:.1f} fast={runs['fast'][-1]:.1f} images/s")
        textbook, fast = statistics.median(runs["textbook"]), statistics.median(runs["fast"])
        print(f"textbook_images_per_second={textbook:.1f}")
        print(f"fast_images_per_second={fast:.1f}")
        print(f"speedup={fast / textbook:.2f}x")
        shared = {"model": args.model, "width": args.width, "batch_size": args.batch_size,
                  "timed_steps": args.steps, "rounds": args.rounds, "threads": torch.get_num_threads()}
        rows = [{"pipeline": "textbook", **shared, "train_images_per_second": round(textbook, 1),
                 "speedup_vs_textbook": 1.0},
                {"pipeline": "fast", **shared, "train_images_per_second": round(fast, 1),
                 "speedup_vs_textbook": round(fast / textbook, 2)}]
        write_results(rows, ctx.results_dir("benchmark") / f"throughput_{args.model}_w{args.width:g}.csv", ctx.provenance(
            pipelines={"textbook": "PIL per-image crop/flip in DataLoader(num_workers=2), fp32, NCHW",
                       "fast": "common.training.fit: tensors in memory, batched crop/flip, "
                               "channels_last, bf16 autocast where fast"}))
        print(f"train_images_per_second={fast:.1f}")
        return
    if args.print_window:   # one reading, for concurrent_images_per_second
        window: dict = {}
        reading = fast_images_per_second(*common, window=window, start_at=args.start_at)
        print(f"window={window['start']:.6f},{window['end']:.6f},{args.steps * args.batch_size}")
        print(f"train_images_per_second={reading:.1f}")
        return
    run = fast_images_per_second if args.pipeline == "fast" else textbook_images_per_second
    print(f"train_images_per_second={statistics.median(run(*common) for _ in range(args.rounds)):.1f}")


if __name__ == "__main__":
    main()
