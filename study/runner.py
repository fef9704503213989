"""Run the study: walk the stages of ``study.stages``, run those not up to date, rebuild the report.

    ./run_all.sh                                  # every stage (this module, with run_all's variables)
    ./run_all.sh distillation                     # one task's stages (and what they need first)
    ./run_all.sh pruning/06_compare_models combined/02_pareto
    ./run_all.sh --launcher slurm --partition gpu --time-minutes 240 --gpus-per-job 1

A stage is up to date when its outputs exist as it wrote them and its completion record says it
ran with the same command, work, settings, data, code, read files and checkpoints
(``study.records``); timestamps decide nothing, so a fresh clone of results regenerated from one
commit reruns nothing and rebuilds the report. ``FORCE=1`` reruns every stage named (cached
checkpoints are still reused when their key matches: ``common.cache``); ``FORCE_RETRAIN=1`` does
too and retrains the models made by other code than today's. Asked for some stages, the runner considers first every stage
they read from, transitively, and runs those that are not up to date, as make would. Every stage
runs with this interpreter, as ``<python> <script> --profile P --dataset D --data-dir DIR
[--device] [--jobs] [--no-progress]``. One status line per stage, ``[run_all] stage NAME
ok|failed|skipped SECONDS``; a failure in deciding is a failure. Ctrl-C reaches the running stage
once; it gets ``STOP_GRACE_SECONDS`` to stop cleanly (its workers too) before it is killed.

With ``--launcher slurm`` (``pip install submitit``) every stage runs on the cluster: a stage's
trainings as one job array, then its script as one job that collects them from the cache. The
runner first checks that SLURM is there and fetches the dataset once (the jobs never download);
job logs go to ``--job-logs`` (default ``logs/submitit/<dataset>-<profile>/``). Its time projection
reads the throughput of the jobs' device from ``--throughput`` (a device check's CSV from a node of
the cluster) and is skipped without it: the login node is never benchmarked for the cluster.
``--launcher submitit-local`` runs the same jobs as processes of this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import errors
from common.flags import DATASET_NAMES, add_variant_args
from common.profiles import PROFILE_ORIGIN, PROFILES, override_text, run_profile

# The stage declaration (study.stages), the records and the plan import torch: they are imported
# inside the functions below, after the command line is parsed, so that --help answers at once.
if TYPE_CHECKING:
    from study.stages import Stage
    from study.work import PlanSettings

PREFIX = "[run_all]"
LAUNCHERS = ("local", "slurm", "submitit-local")   # not local: study.launch.CLUSTERS


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0") not in ("", "0")


def build_parser() -> argparse.ArgumentParser:
    """The runner's command line; every default comes from run_all.sh's environment variables."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="stages or tasks to run (default: all), e.g. distillation")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=env("PROFILE") or None)
    add_variant_args(parser, variant=env("VARIANT") or None)
    parser.add_argument("--dataset", choices=sorted(DATASET_NAMES), default=env("DATASET") or "cifar100")
    parser.add_argument("--data-dir", default=env("CIFAR_DIR") or "data")
    parser.add_argument("--device", default=env("DEVICE") or None)
    parser.add_argument("--jobs", type=int, default=int(env("JOBS")) if env("JOBS") else None)
    parser.add_argument("--force", action="store_true", default=_env_flag("FORCE"), help="rerun every stage named")
    parser.add_argument("--keep-going", action="store_true", default=_env_flag("KEEP_GOING"),
                        help="continue past a failed stage (exit status 1 at the end)")
    parser.add_argument("--log-dir", default=env("LOG_DIR") or None, help="also write each stage's output here")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild the report at the end")
    parser.add_argument("--no-plan", action="store_true", help="do not print the projected time before a cpu/full run")
    parser.add_argument("--launcher", choices=LAUNCHERS, default=env("LAUNCHER") or "local",
                        help="local: stages run here; slurm: as SLURM jobs; submitit-local: as submitit "
                             "jobs, each a process of this machine")
    parser.add_argument("--job-logs", default=env("JOB_LOG_DIR") or None,
                        help="folder of the submitted jobs' logs (default logs/submitit/<dataset>-<profile>)")
    parser.add_argument("--throughput", default=env("THROUGHPUT") or None,
                        help="a device check's throughput.csv from the jobs' device: the time projection "
                             "of a SLURM run (without it the projection is skipped)")
    parser.add_argument("--partition", default=env("SLURM_PARTITION") or None, help="SLURM partition")
    parser.add_argument("--time-minutes", type=int, default=240, help="SLURM time limit per job")
    parser.add_argument("--gpus-per-job", type=int, default=1, help="GPUs per SLURM job")
    return parser


def select(targets: list[str], settings: PlanSettings) -> list[Stage]:
    """The stages named by ``targets`` (stage names or task folders; none: all) and every stage
    that writes a results file or first trains a checkpoint they read, transitively, in
    declaration order: the runner then skips those that are up to date, so a named stage runs on
    up-to-date inputs."""
    from study.stages import STAGES, producers

    if not targets:
        return list(STAGES)
    chosen = {s.name for s in STAGES if s.name in targets or s.task in targets}
    unknown = [t for t in targets if not any(t in (s.name, s.task) for s in STAGES)]
    if unknown:
        raise SystemExit(f"error: no stage or task {unknown[0]!r}; the stages are: {', '.join(s.name for s in STAGES)}")
    made = producers(settings)
    todo = [s for s in STAGES if s.name in chosen]
    while todo:
        stage = todo.pop()
        for need in (*stage.reads, *stage.checkpoints):
            maker = made.get(need)
            if maker and maker.name not in chosen:
                chosen.add(maker.name)
                todo.append(maker)
    return [s for s in STAGES if s.name in chosen]


def set_flags(args: argparse.Namespace) -> list[str]:
    """``--set key=value ...`` of the runner's overrides and its ``--variant`` ([] without)."""
    return ((["--set", *(override_text(k, v) for k, v in args.set)] if args.set else [])
            + (["--variant", args.variant] if args.variant else []))


def shared_flags(args: argparse.Namespace, profile_name: str) -> list[str]:
    """The flags every stage gets: its study profile, the ``--set`` overrides, dataset, data
    folder, and device, workers and progress bars when given (``$OVERRIDES`` reaches the stages
    through their environment)."""
    flags = ["--profile", profile_name, "--dataset", args.dataset, "--data-dir", args.data_dir]
    flags += set_flags(args)
    flags += ["--device", args.device] if args.device else []
    flags += ["--jobs", str(args.jobs)] if args.jobs else []
    return flags + ([] if sys.stdout.isatty() else ["--no-progress"])


def print_projection(stages, args, profile, settings: PlanSettings, where) -> None:
    """``[run_all] projected N min here`` for the stages that will run (``study.plan``; a short
    throughput benchmark the first time on a device, cached after)."""
    from study import records

    from common.cache import force_retrain

    todo = [s for s in stages if args.force or force_retrain()
            or records.why_rerun(s, profile, settings, where) is not None]
    if not todo:
        return
    from study.plan import projected_minutes

    flags = [f for f in shared_flags(args, profile.study_name) if f != "--no-progress"]
    if args.launcher != "local":    # the jobs run on the cluster's devices: never time this machine
        if not args.throughput:
            print(f"{PREFIX} no time projection for jobs on other machines: give --throughput with a device "
                  f"check's throughput.csv from their device (python -m study.device_check --device cuda "
                  f"--only throughput, on one of them)", flush=True)
            return
        minutes, source = projected_minutes(todo, flags + ["--throughput", args.throughput, "--jobs", "1"])
        print(f"{PREFIX} projected {minutes:.0f} min of training for {len(todo)} stage(s) if their jobs ran one "
              f"after another (an array runs them side by side; figures: {source})", flush=True)
        return
    minutes, source = projected_minutes(todo, flags)
    print(f"{PREFIX} projected {minutes:.0f} min here for {len(todo)} stage(s) "
          f"(python -m study.plan --profile {profile.name} for the list; figures: {source})", flush=True)


STOP_GRACE_SECONDS = 30.0   # a stopped stage's time to stop cleanly (its pool gives its workers 10 s)


def _copy_lines(source, log: Path | None) -> None:
    """Copy a stage's output to this process's stdout (and ``log``) until it closes."""
    with open(log, "w") as out:
        for line in source:
            sys.stdout.write(line)
            sys.stdout.flush()
            out.write(line)


def run_logged(command: list[str], log: Path | None, env: dict | None = None) -> int:
    """Run ``command`` in the project root with ``env`` added to this environment, its output to
    this process's stdout (and ``log``); returns its exit status.

    The stage runs in a process group of its own, so Ctrl-C reaches it once, from here: on
    KeyboardInterrupt (or SIGTERM) this sends SIGINT to its group (its pool workers too), waits up
    to ``STOP_GRACE_SECONDS`` for it to stop cleanly (half-written files removed, a training's
    last finished epoch kept), kills it only then, and raises KeyboardInterrupt."""
    from common.results import PROJECT_ROOT

    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **(env or {})}, process_group=0,
                            stdout=subprocess.PIPE if log else None, stderr=subprocess.STDOUT if log else None,
                            text=True)
    copier = threading.Thread(target=_copy_lines, args=(proc.stdout, log), daemon=True) if log else None
    if copier:
        copier.start()
    try:
        status = proc.wait()
    except KeyboardInterrupt:
        _stop(proc)
        raise
    if copier:
        copier.join()
    return status


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to ``proc``'s group, then ``STOP_GRACE_SECONDS`` to exit, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def current_settings(profile, dataset: str) -> PlanSettings:
    """What the stages' work depends on now: the profile, the DKD choice recorded in the results
    (it changes when the students stage runs) and the declaration."""
    from study.plan import recorded_dkd_selection
    from study.stages import STAGES
    from study.work import PlanSettings

    return PlanSettings(profile, recorded_dkd_selection(dataset, profile.name), tuple(STAGES))


def run_stages(stages, args, profile, settings, where, launcher, failed: list) -> int:
    """Run every stage of ``stages`` that is not up to date, in order; names of failed stages go to
    ``failed``. Returns 1 at the first failure unless ``--keep-going``, else 0."""
    from common.cache import FORCE_RETRAIN, force_retrain
    from common.checkpoints import CHECKPOINT_LOG
    from common.cli import resolve_device
    from common.numerics import machine_kind
    from study import records

    machine = machine_kind(resolve_device(args.device or "auto"))
    for stage in stages:
        t0 = time.monotonic()
        why = ("FORCE=1" if args.force else f"{FORCE_RETRAIN}=1" if force_retrain()
               else records.why_rerun(stage, profile, settings, where))
        if why is None:
            print(f"{PREFIX} skip {stage.name}: up to date (FORCE=1 reruns it)")
            print(f"{PREFIX} stage {stage.name} skipped 0", flush=True)
            continue
        print(f"{PREFIX} === {stage.name} === ({why})", flush=True)
        checkpoint_log = records.forget(stage, where.run_dir)
        command = stage.command(sys.executable) + shared_flags(args, profile.study_name)
        log = Path(args.log_dir) / f"{stage.name.replace('/', '_')}.log" if args.log_dir else None
        if launcher is None:
            status = run_logged(command, log, {CHECKPOINT_LOG: str(checkpoint_log)})
        else:
            from study.launch import run_stage_on

            os.environ[CHECKPOINT_LOG] = str(checkpoint_log)
            status = run_stage_on(launcher, stage, settings, command, args)
        missing = stage.missing_outputs(where.run_dir)
        if status == 0 and missing:
            print(f"{PREFIX} {stage.name} exited 0 but did not write {missing[0]}", file=sys.stderr)
            status = 1
        seconds = time.monotonic() - t0
        if status == 0:
            settings = current_settings(profile, args.dataset)
            records.write_record(stage, profile, settings, where, seconds, machine)
            print(f"{PREFIX} stage {stage.name} ok {round(seconds)}", flush=True)
            continue
        print(f"{PREFIX} stage {stage.name} failed {round(seconds)}", flush=True)
        print(f"{PREFIX} FAILED at stage '{stage.name}' (command: {' '.join(command)})", file=sys.stderr, flush=True)
        failed.append(stage.name)
        if not args.keep_going:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    errors.install()
    args = build_parser().parse_args(argv)
    from common.checkpoints import checkpoints_root
    from common.results import results_root, run_folder
    from study.records import RunFolders
    from study.stages import REPORT

    profile = run_profile(args, announce=False)   # a variant when --set / $OVERRIDES change a value
    if not args.profile:   # the stages are given --profile; their profile line says who chose it
        os.environ[PROFILE_ORIGIN] = "default of run_all.sh: " + ("CUDA available" if profile.study_name == "full" else "no CUDA")
    run_dir = results_root() / run_folder(args.dataset, profile.name)
    where = RunFolders(run_dir, checkpoints_root() / run_folder(args.dataset, profile.name), args.dataset,
                       Path(args.data_dir))
    settings = current_settings(profile, args.dataset)
    stages = select(args.targets, settings)
    print(f"{PREFIX} profile={profile.name} dataset={args.dataset} data={args.data_dir} outputs={run_dir} "
          f"stages={len(stages)}", flush=True)
    launcher = None
    if args.launcher != "local":    # SLURM is there and the data fetched once, before anything is submitted
        from study.launch import launch_executor

        from common.results import PROJECT_ROOT

        logs = Path(args.job_logs) if args.job_logs else PROJECT_ROOT / "logs" / "submitit" / run_folder(args.dataset, profile.name)
        launcher = launch_executor(args.launcher, args.dataset, args.data_dir, logs, args.partition,
                                   args.time_minutes, args.gpus_per_job)
    started, failed = time.monotonic(), []
    if profile.study_name != "smoke" and not args.no_plan:
        print_projection(stages, args, profile, settings, where)
    signal.signal(signal.SIGTERM, _interrupt)   # a kill stops the stage as Ctrl-C does
    try:
        status = run_stages(stages, args, profile, settings, where, launcher, failed)
    except KeyboardInterrupt:
        print(f"\n{PREFIX} interrupted: {len(failed)} stage(s) failed before; every finished stage is recorded and "
              "an unfinished training resumes from its last epoch: run the same command again", file=sys.stderr)
        return 130
    if status:
        return status
    if not args.no_report:
        # The report is rebuilt every time (seconds), the PDF where LaTeX is installed.
        print(f"{PREFIX} === report ===", flush=True)
        t0 = time.monotonic()
        status = run_logged([sys.executable, REPORT, "--profile", profile.study_name, "--dataset", args.dataset,
                             *set_flags(args)], Path(args.log_dir) / "report.log" if args.log_dir else None)
        print(f"{PREFIX} stage report {'ok' if status == 0 else 'failed'} {round(time.monotonic() - t0)}", flush=True)
        if status:
            failed.append("report")
    if failed:
        print(f"{PREFIX} {len(failed)} stage(s) failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    print(f"{PREFIX} all stages done in {round(time.monotonic() - started)} s; outputs in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
