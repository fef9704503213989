"""Independent trainings run concurrently: a pool of worker processes spread over the GPUs.

A stage with trainings that do not depend on each other (students and their seeds, DKD
candidates, baselines) lists them as ``Job``s: the dotted name of a function and its keyword
arguments. ``run_jobs`` runs each job once, either here (one worker) or in ``ctx.jobs`` worker
processes, each with its own run context on one device (workers are dealt round-robin over every
GPU of the machine). A job trains a model and caches it as a checkpoint, seeded exactly as when
it runs alone; the stage then reads every model from that cache as before. So results do not
depend on the number of workers, and a stage run with ``--jobs 1`` does the same work in the
same order as before the pool existed.

Beyond one machine the same jobs run as a job array through each stage's per-job flags (e.g.
``distillation/01_students.py --methods kd --seeds 1``): every array task caches its model, and
a last task without those flags collects the results. This module writes no cluster code.
"""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

JOBS_PER_GPU = 2   # default workers per GPU: one process's host work and evaluation overlap the other's steps


def default_jobs(device: torch.device | str) -> int:
    """Default worker processes: ``JOBS_PER_GPU`` per visible GPU when ``device`` is CUDA without
    an index (``cuda`` or auto), ``JOBS_PER_GPU`` on a named GPU (``cuda:1``), 1 elsewhere."""
    device = torch.device(device)
    if device.type != "cuda":
        return 1
    gpus = 1 if device.index is not None else max(1, torch.cuda.device_count())
    return JOBS_PER_GPU * gpus


def worker_devices(device: torch.device | str, workers: int) -> list[torch.device]:
    """The device of each of ``workers`` workers: round-robin over every visible GPU for an
    unindexed CUDA ``device``, else ``device`` itself for all of them."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        gpus = max(1, torch.cuda.device_count())
        return [torch.device("cuda", i % gpus) for i in range(workers)]
    return [device] * workers


@dataclass(frozen=True)
class Job:
    """One training: ``function`` ('package.module:name') called as ``function(ctx, **kwargs)``.

    ``label`` names it in progress output; the function must cache what it trains."""

    function: str
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def run(self, ctx) -> None:
        """Call the job's function with ``ctx`` (a ``RunContext``) in this process."""
        module, name = self.function.split(":")
        getattr(importlib.import_module(module), name)(ctx, **self.kwargs)


# ----------------------------------------------------------------------------- worker side

_worker_ctx = None


def _start_worker(ctx_fields: dict, devices: list[str], counter, threads: int) -> None:
    """Pool initializer: this worker's run context on the next device of ``devices``."""
    global _worker_ctx
    from common.cli import RunContext

    with counter.get_lock():
        index = counter.value
        counter.value += 1
    device = torch.device(devices[index % len(devices)])
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    _worker_ctx = RunContext(**{**ctx_fields, "device": device, "progress": False, "jobs": 1})


def _run_in_worker(job: Job) -> str:
    job.run(_worker_ctx)
    return job.label or job.function


def context_fields(ctx) -> dict:
    """The fields of a ``RunContext`` that a worker rebuilds it from (no data, no cached copies)."""
    return {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)
            if f.init and not f.name.startswith("_")}


def run_jobs(ctx, jobs: Sequence[Job], desc: str = "jobs") -> None:
    """Run every job of ``jobs`` once: in this process, in order, when ``ctx.jobs`` is 1 (or
    there is one job); else in ``min(ctx.jobs, len(jobs))`` worker processes (spawned, as CUDA
    needs). Each CPU worker gets an equal share of this process's threads. The first failing job
    stops the pool and its error is raised here, naming the job."""
    workers = min(ctx.jobs, len(jobs))
    if workers <= 1:
        for job in jobs:
            job.run(ctx)
        return
    devices = [str(d) for d in worker_devices(ctx.device, workers)]
    threads = max(1, torch.get_num_threads() // workers) if ctx.device.type == "cpu" else torch.get_num_threads()
    print(f"[jobs] {len(jobs)} {desc} on {workers} workers ({', '.join(sorted(set(devices)))}, "
          f"{threads} threads each)", flush=True)
    spawn = multiprocessing.get_context("spawn")
    counter = spawn.Value("i", 0)
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_start_worker,
                             initargs=(context_fields(ctx), devices, counter, threads)) as pool:
        futures = {pool.submit(_run_in_worker, job): job for job in jobs}
        bar = tqdm(total=len(jobs), desc=desc, disable=not ctx.progress)
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    job = futures[future]
                    raise RuntimeError(f"job {job.label or job.function} failed: "
                                       f"{future.exception()}") from future.exception()
                bar.update(1)
        bar.close()

