"""Independent trainings run concurrently: a pool of worker processes spread over the GPUs.

A stage with trainings that do not depend on each other (students and their seeds, DKD
candidates, baselines) lists them as ``Job``s: the dotted name of a function and its keyword
arguments. ``run_jobs`` runs each job once, either here (one worker) or in ``ctx.jobs`` worker
processes, each with its own run context on one device (workers are dealt round-robin over every
GPU of the machine). A job trains a model and caches it as a checkpoint, seeded exactly as when
it runs alone; the stage then reads every model from that cache as before. So results do not
depend on the number of workers, and a stage run with ``--jobs 1`` does the same work in the
same order as before the pool existed.

Beyond one machine the same jobs go to SLURM as one job array through submitit
(``study.launch``, ``./run_all.sh --launcher slurm``); the stage's script then runs once more
and collects the results from the cache. This module writes no cluster code.
"""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from common import library_warnings
from common.errors import UserError
from common.numerics import set_numerics

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

    ``label`` names it in progress output; the function must cache what it trains; ``key``
    names what it caches (``run_jobs`` runs jobs with an equal non-empty key once); ``model``,
    ``teacher`` and ``epochs_of`` say what it trains, so a cost plan prices the very jobs a stage
    runs."""

    function: str
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    key: str = ""        # the checkpoint it writes, where known: jobs with an equal key are one job
    model: str = ""      # what it trains, for a cost plan: the architecture (vgg11, vgg16, ...)
    teacher: str = ""    # the teacher it runs a forward of every step ('' or 'none': no teacher)
    epochs_of: str = ""  # the profile setting that gives its epochs (epochs, finetune_epochs, student_epochs)
    waits_for: str = ""  # a choice the stage makes before it can run (a launcher leaves it to the stage)

    def run(self, ctx) -> None:
        """Call the job's function with ``ctx`` (a ``RunContext``) in this process."""
        module, name = self.function.split(":")
        getattr(importlib.import_module(module), name)(ctx, **self.kwargs)


# ----------------------------------------------------------------------------- worker side

_worker_ctx = None


def _start_worker(context_class: type, ctx_fields: dict, devices: list[str], counter, threads: int) -> None:
    """Pool initializer: this worker's run context (a ``context_class``, the parent's
    ``RunContext``) on the next device of ``devices``."""
    global _worker_ctx

    library_warnings.install()
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    device = torch.device(devices[index % len(devices)])
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    signal.signal(signal.SIGTERM, _exit_on_terminate)
    set_numerics(ctx_fields.get("deterministic", False))
    _worker_ctx = context_class(**{**ctx_fields, "device": device, "progress": False, "jobs": 1})


class _Terminated(BaseException):
    """Raised in a worker by SIGTERM (``stop_pool``) to unwind the running job."""


_in_job = False


def _exit_on_terminate(signum, frame) -> None:
    """SIGTERM in a worker: unwind the running job through its ``finally`` blocks (``atomic_path``
    removes a half-written file), or exit at once when idle."""
    if _in_job:
        raise _Terminated
    os._exit(128 + signum)


def _run_in_worker(job: Job) -> str:
    global _in_job
    _in_job = True
    try:
        job.run(_worker_ctx)
    except _Terminated:
        os._exit(128 + signal.SIGTERM)
    finally:
        _in_job = False
    return job.label or job.function


def context_fields(ctx) -> dict:
    """The fields of a ``RunContext`` that a worker rebuilds it from (no data, no cached copies)."""
    return {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)
            if f.init and not f.name.startswith("_")}


def run_jobs(ctx, jobs: Sequence[Job], desc: str = "jobs") -> None:
    """Run every job of ``jobs`` once: in this process, in order, when ``ctx.jobs`` is 1 (or
    there is one job); else in ``min(ctx.jobs, len(jobs))`` worker processes (spawned, as CUDA
    needs). Every worker trains with this process's thread count, as a ``--jobs 1`` run does, so a
    model does not depend on ``--jobs`` (a CPU kernel may round differently with another thread
    count; on a CPU more workers than one oversubscribe its cores, which is why 1 is its default).
    The first failing job stops the pool at once: the other workers are terminated (a worker
    removes its unfinished files as it stops) and its error is raised here, naming the job."""
    jobs = unique_jobs(jobs)
    workers = min(ctx.jobs, len(jobs))
    if workers <= 1:
        for job in jobs:
            job.run(ctx)
        return
    devices = [str(d) for d in worker_devices(ctx.device, workers)]
    threads = torch.get_num_threads()
    print(f"[jobs] {len(jobs)} {desc} on {workers} workers ({', '.join(sorted(set(devices)))}, "
          f"{threads} threads each, as with --jobs 1)", flush=True)
    spawn = multiprocessing.get_context("spawn")
    counter = spawn.Value("i", 0)
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=_start_worker,
                               initargs=(type(ctx), context_fields(ctx), devices, counter, threads))
    futures = {pool.submit(_run_in_worker, job): job for job in jobs}
    bar = tqdm(total=len(jobs), desc=desc, disable=not ctx.progress)
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    job = futures[future]
                    if isinstance(future.exception(), UserError):
                        raise UserError(f"{job.label or job.function}: {future.exception()}") from None
                    raise RuntimeError(f"job {job.label or job.function} failed: "
                                       f"{future.exception()}") from future.exception()
                bar.update(1)
    except BaseException:          # a failed job, or Ctrl-C: stop the others now, not when they end
        stop_pool(pool)
        raise
    finally:
        bar.close()
    pool.shutdown()


def unique_jobs(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` in order without the later ones whose non-empty ``key`` an earlier job has: two
    jobs that write the same checkpoint (e.g. the 'dkd' student and the 'dkd' candidate of the DKD
    grid) would otherwise train it twice, concurrently, the last writer winning."""
    seen, out = set(), []
    for job in jobs:
        if job.key and job.key in seen:
            print(f"[jobs] {job.label or job.function}: trains {job.key} like an earlier job; run once", flush=True)
            continue
        seen.add(job.key)
        out.append(job)
    return out


def stop_pool(pool: ProcessPoolExecutor, grace_seconds: float = 10.0) -> None:
    """Cancel the queued jobs of ``pool`` and terminate its running workers: SIGTERM first (a
    worker's handler exits through its ``finally`` blocks, so ``atomic_path`` removes a
    half-written file), SIGKILL after ``grace_seconds``. Python 3.11's executor has no public call
    for this (3.14 adds ``terminate_workers``), hence its process table."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
