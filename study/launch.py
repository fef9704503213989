"""A stage's trainings past one machine: its ``common.jobs.Job``s as one submitit job array.

``job_executor`` is called once, before anything is submitted: it makes sure SLURM is there and
returns the executor, whose job logs go to a folder of their own (the runner has fetched the
dataset once by then; the jobs never download it: their environment has
``common.data.NO_DOWNLOAD``).
``run_jobs_on(executor, ctx, jobs)`` submits every job of a stage (e.g.
``distillation.study.student_jobs``) as one array: each array task rebuilds this run's
``RunContext`` on its node, as a pool worker of ``common.jobs`` does, with as many torch threads as
its allocation has CPUs, trains its model and caches it as a checkpoint. ``run_command_on(executor,
[python, stage script, flags...])`` then runs the stage's script once more as one job: it finds
every model cached, trains nothing and writes the results. Data, checkpoints and results must be on
a file system that the nodes share.

submitit does the scheduling (SLURM, or its local executor on this machine, by that name); this
module writes no scheduler code.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

import submitit
import torch

from common.data import NO_DOWNLOAD
from common.errors import UserError
from common.jobs import Job, context_fields, unique_jobs
from common.numerics import set_numerics

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_TAIL = 4000   # characters of a failed command's output quoted in the error
# --launcher -> submitit cluster: SLURM, or each job a process of this machine ('local' runs in
# this process: the runner's default, no submitit at all)
CLUSTERS = {"slurm": "slurm", "submitit-local": "local"}


def slurm_reachable() -> bool:
    """Whether this machine can submit SLURM jobs (``sbatch`` is on PATH)."""
    return shutil.which("sbatch") is not None


def job_executor(launcher: str, folder: str | Path, partition: str | None = None, time_minutes: int = 60,
                 gpus_per_job: int = 1, cpus_per_job: int | None = None) -> submitit.AutoExecutor:
    """A submitit executor for ``launcher`` ('slurm' or 'submitit-local', ``CLUSTERS``) whose
    jobs' logs and pickles go under ``folder``.

    Every job gets ``time_minutes``, ``gpus_per_job`` GPUs and ``cpus_per_job`` CPUs (None: the
    cluster's default); ``partition`` applies to SLURM only. Jobs import the project from this
    checkout (its root is put on their ``PYTHONPATH``), wherever they start, and never download
    the data (``$CIFAR_NO_DOWNLOAD``). Raises UserError, before anything is written, for 'slurm'
    where no ``sbatch`` is on PATH."""
    if launcher not in CLUSTERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {sorted(CLUSTERS)}")
    if launcher == "slurm" and not slurm_reachable():
        raise UserError("--launcher slurm needs SLURM, and this machine has no sbatch on PATH: run it on the "
                        "cluster's login node (--launcher submitit-local runs the jobs as processes of this "
                        "machine)")
    executor = submitit.AutoExecutor(folder=folder, cluster=CLUSTERS[launcher])
    setup = [f"export PYTHONPATH={shlex.quote(str(PROJECT_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
             f"export {NO_DOWNLOAD}=1"]
    executor.update_parameters(timeout_min=time_minutes, gpus_per_node=gpus_per_job,
                               cpus_per_task=cpus_per_job, slurm_partition=partition,
                               slurm_setup=setup, local_setup=setup)
    return executor


def allocated_cpus() -> int:
    """CPUs this job was given: ``$SLURM_CPUS_PER_TASK``, else the CPUs this process may run on."""
    given = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(given) if given.isdigit() and int(given) > 0 else len(os.sched_getaffinity(0))


def run_job_remotely(context_class: type, ctx_fields: dict, job: Job) -> str:
    """Array task, on the job's node: rebuild the run context from ``ctx_fields``
    (``common.jobs.context_fields``) like a pool worker (``common.jobs._start_worker``): numerics
    first, as many torch threads as the job's allocation has CPUs (``allocated_cpus``), the
    node's ``cuda`` when the submitting run's device is CUDA (the GPU the scheduler gave the job),
    no progress bars, one worker; then run ``job`` (it caches its model). Returns the job's label."""
    set_numerics(ctx_fields.get("deterministic", False))
    torch.set_num_threads(allocated_cpus())
    device = torch.device(ctx_fields["device"])
    if device.type == "cuda":
        device = torch.device("cuda")
    ctx = context_class(**{**ctx_fields, "device": device, "progress": False, "jobs": 1})
    job.run(ctx)
    return job.label or job.function


def _error_line(error: BaseException) -> str:
    """The exception line of a failed task: a ``FailedJobError`` carries the task's traceback
    between dashed lines; other errors (the debug executor's own, a timeout) are themselves."""
    if not isinstance(error, submitit.core.utils.FailedJobError):
        return f"{type(error).__name__}: {error}"
    parts = str(error).split("-" * 22)
    lines = [line for line in (parts[1] if len(parts) >= 3 else str(error)).splitlines() if line.strip()]
    return lines[-1] if lines else repr(error)


def _job_ids(jobs: Sequence[submitit.Job]) -> str:
    ids = [job.job_id for job in jobs]
    return ", ".join(ids) if len(ids) <= 4 else f"{ids[0]} ... {ids[-1]}"


def run_jobs_on(executor: submitit.Executor, ctx, jobs: Sequence[Job], desc: str = "jobs") -> None:
    """Run every job of ``jobs`` once (``common.jobs.unique_jobs``) through ``executor``, as one
    job array of ``run_job_remotely`` tasks, and wait for all of them. Prints one line for the
    array (job ids, log folder). Returns None (each job caches its model); raises RuntimeError
    naming the first failed job (in ``jobs`` order) and its error once every task has ended."""
    jobs = unique_jobs(jobs)
    if not jobs:
        return
    n = len(jobs)
    submitted = executor.map_array(run_job_remotely, [type(ctx)] * n, [context_fields(ctx)] * n, jobs)
    print(f"[submitit] {n} {desc} as one array: {_job_ids(submitted)} (logs: {executor.folder})", flush=True)
    errors = [task.exception() for task in submitted]   # waits for every task
    for job, task, error in zip(jobs, submitted, errors):
        if error is not None:
            raise RuntimeError(f"job {job.label or job.function} failed ({task.job_id}): "
                               f"{_error_line(error)}; log: {task.paths.stderr}") from error


def _run_command(command: list[str], env: dict | None, cwd: str | None) -> str:
    """Job: ``command`` through ``submitit.helpers.CommandFunction``, in the node's environment
    plus ``env``; returns its standard output."""
    full_env = None if env is None else {**os.environ, **env}
    return submitit.helpers.CommandFunction(command, cwd=cwd, env=full_env)()


def run_command_on(executor: submitit.Executor, command: list[str], env: dict | None = None,
                   cwd: str | Path | None = None) -> None:
    """Run ``command`` (e.g. a stage's script, to collect its cached models into results) as one
    job of ``executor``, in ``cwd`` (None: the job's working directory) with the node's
    environment plus ``env``, and wait for it. Prints its job id and log folder. Returns None;
    raises RuntimeError with the tail of the command's output when it fails."""
    task = executor.submit(_run_command, list(command), env, None if cwd is None else str(cwd))
    print(f"[submitit] {shlex.join(command)} as job {task.job_id} (logs: {executor.folder})", flush=True)
    error = task.exception()
    if error is not None:
        output = "\n".join(text for text in (task.stdout(), task.stderr()) if text) or str(error)
        raise RuntimeError(f"command failed ({task.job_id}): {shlex.join(command)}\n"
                           f"{output[-OUTPUT_TAIL:]}") from error


def run_stage_on(executor: submitit.Executor, stage, settings, command: list[str], args) -> int:
    """Run one declared stage through ``executor``: its trainings (``stage.jobs``, those that do
    not wait for a choice the stage makes) as one job array, then ``command`` -- the stage's
    script, which finds them cached and writes the results -- as one job. Returns 0, or 1 after
    printing what failed (the runner's exit status of a stage)."""
    from common.cli import RunContext

    try:
        if stage.jobs is not None:
            ctx = RunContext(profile=settings.profile, dataset=args.dataset, data_dir=Path(args.data_dir).resolve(),
                             device=torch.device(args.device or ("cuda" if args.gpus_per_job else "cpu")),
                             progress=False, jobs=1)
            jobs = [j for j in stage.jobs(stage.arguments(settings.profile), settings) if not j.waits_for]
            run_jobs_on(executor, ctx, jobs, desc=stage.name)
        run_command_on(executor, command, cwd=str(Path(__file__).resolve().parents[1]))
    except RuntimeError as exc:
        print(f"[launch] {stage.name}: {exc}")
        return 1
    return 0
