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
[--device] [--jobs] [--no-progress]``. Every value, from a flag or from run_all.sh's environment
variables (``ENVIRONMENT``), is checked by the same rule before anything is written, and so are
the folders it writes: a bad one is one line (``common.flags.Parser``). One status line per stage
(``study.status``: ``k/N``, seconds, the time left from the cost plan, a note when other processes
slow the machine down); each stage's full output goes to ``<log dir>/<stage>.log`` (the folder is
printed once; ``--verbose`` also shows it live, and a failed stage's last lines are shown); a
failure in deciding is a failure. The dataset is fetched once before anything is decided: missing
and not downloadable, it is one line and every completion record is kept. Asked for some tasks
only, the report is rebuilt when every task's results exist, else skipped in one line. Ctrl-C
reaches the running stage once; it gets ``STOP_GRACE_SECONDS`` to stop cleanly (its workers too)
before it is killed.

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
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import errors
from common.flags import DATASET_NAMES, Parser, add_variant_args, count, device_name, positive_int
from common.profiles import PROFILE_ORIGIN, PROFILES, override_text, run_profile
from study import status as st
from study.stage_process import log_of, run_logged, show_tail
from common.machine_load import MachineLoad
from study.status import PREFIX

# The stage declaration (study.stages), the records and the plan import torch: they are imported
# inside the functions below, after the command line is parsed, so that --help answers at once.
if TYPE_CHECKING:
    from study.stages import Stage
    from study.work import PlanSettings

LAUNCHERS = ("local", "slurm", "submitit-local")   # not local: study.launch.CLUSTERS


# run_all.sh's environment variables and the flags they stand for: both pass the same checks
# (``common.flags.Parser.parse_with_environment``); a flag given wins over its variable.
ENVIRONMENT = {"PROFILE": "--profile", "DATASET": "--dataset", "CIFAR_DIR": "--data-dir", "DEVICE": "--device",
               "JOBS": "--jobs", "VARIANT": "--variant", "FORCE": "--force", "FORCE_RETRAIN": "--force-retrain",
               "KEEP_GOING": "--keep-going", "VERBOSE": "--verbose", "LOG_DIR": "--log-dir",
               "LAUNCHER": "--launcher", "JOB_LOG_DIR": "--job-logs", "THROUGHPUT": "--throughput",
               "SLURM_PARTITION": "--partition"}


def build_parser() -> Parser:
    """The runner's command line; ``ENVIRONMENT`` maps run_all.sh's variables onto its flags."""
    parser = Parser(prog="./run_all.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="stages or tasks to run (default: all), e.g. distillation")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None, help="$PROFILE")
    add_variant_args(parser)
    parser.add_argument("--dataset", choices=sorted(DATASET_NAMES), default="cifar100", help="$DATASET")
    parser.add_argument("--data-dir", default="data", help="$CIFAR_DIR")
    parser.add_argument("--device", type=device_name, default=None, help="$DEVICE")
    parser.add_argument("--jobs", type=positive_int, default=None, help="$JOBS")
    parser.add_argument("--force", action="store_true", help="rerun the stages named, not their up-to-date inputs ($FORCE=1)")
    parser.add_argument("--force-retrain", action="store_true",
                        help="rerun every stage selected, inputs too, and retrain the cached models made by other code "
                             "($FORCE_RETRAIN=1)")
    parser.add_argument("--keep-going", action="store_true",
                        help="continue past a failed stage (exit status 1 at the end; $KEEP_GOING=1)")
    parser.add_argument("--verbose", action="store_true",
                        help="show each stage's output live, not only in its log ($VERBOSE=1)")
    parser.add_argument("--log-dir", default=None,
                        help="folder of the stages' logs, <stage>.log (default logs/<dataset>-<profile>/; $LOG_DIR)")
    parser.add_argument("--no-report", action="store_true", help="do not rebuild the report at the end")
    parser.add_argument("--no-plan", action="store_true", help="do not print the projected time before a cpu/full run")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="local",
                        help="local: stages run here; slurm: as SLURM jobs; submitit-local: as submitit "
                             "jobs, each a process of this machine ($LAUNCHER)")
    parser.add_argument("--job-logs", default=None,
                        help="folder of the submitted jobs' logs (default logs/submitit/<dataset>-<profile>; "
                             "$JOB_LOG_DIR)")
    parser.add_argument("--throughput", default=None,
                        help="a device check's throughput.csv from the jobs' device: the time projection "
                             "of a SLURM run (without it the projection is skipped; $THROUGHPUT)")
    parser.add_argument("--partition", default=None, help="SLURM partition ($SLURM_PARTITION)")
    parser.add_argument("--time-minutes", type=positive_int, default=240, help="SLURM time limit per job")
    parser.add_argument("--gpus-per-job", type=count, default=1, help="GPUs per SLURM job (0: CPU jobs)")
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
    through their environment). Progress bars only where the stage's output is shown live on a
    terminal (``--verbose``): a log file gets the epoch summaries."""
    flags = ["--profile", profile_name, "--dataset", args.dataset, "--data-dir", args.data_dir]
    flags += set_flags(args)
    flags += ["--device", args.device] if args.device else []
    flags += ["--jobs", str(args.jobs)] if args.jobs else []
    return flags + ([] if args.verbose and sys.stdout.isatty() else ["--no-progress"])


def forced(stage: Stage, args: argparse.Namespace) -> bool:
    """Whether --force ($FORCE=1) reruns ``stage``: it does the stages ``args.targets`` names
    (every stage when it names none), not the inputs ``select`` adds to them."""
    return args.force and (not args.targets or stage.name in args.targets or stage.task in args.targets)


def stages_to_run(stages, args, profile, settings: PlanSettings, where) -> list:
    """The stages of ``stages`` not up to date now, with those --force names (every one under
    FORCE_RETRAIN)."""
    from study import records

    from common.cache import force_retrain

    return [s for s in stages if forced(s, args) or force_retrain()
            or records.why_rerun(s, profile, settings, where) is not None]


def projection(todo, args, profile) -> dict[str, float]:
    """Projected seconds per stage of ``todo`` (``study.plan``): on a cpu/full run, printed as
    ``[run_all] projected N min here`` (a short throughput benchmark the first time on a device,
    cached after); on a smoke run only from an earlier measurement, silently; {} without one."""
    if not todo:
        return {}
    from study.plan import projected_stage_seconds

    flags = [f for f in shared_flags(args, profile.study_name) if f != "--no-progress"]
    if args.launcher != "local":    # the jobs run on the cluster's devices: never time this machine
        if not args.throughput:
            print(f"{PREFIX} no time projection for jobs on other machines: give --throughput with a device "
                  f"check's throughput.csv from their device (python -m study.device_check --device cuda "
                  f"--only throughput, on one of them)", flush=True)
            return {}
        seconds, source = projected_stage_seconds(todo, flags + ["--throughput", args.throughput, "--jobs", "1"])
        print(f"{PREFIX} projected {sum(seconds.values()) / 60:.0f} min of training for {len(todo)} stage(s) if their "
              f"jobs ran one after another (an array runs them side by side; figures: {source})", flush=True)
        return seconds
    if profile.study_name == "smoke" or args.no_plan:
        found = projected_stage_seconds(todo, flags, measure=False)
        return found[0] if found else {}
    seconds, source = projected_stage_seconds(todo, flags)
    print(f"{PREFIX} projected {sum(seconds.values()) / 60:.0f} min here for {len(todo)} stage(s) "
          f"(python -m study.plan --profile {profile.name} for the list; figures: {source})", flush=True)
    return seconds


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def current_settings(profile, dataset: str) -> PlanSettings:
    """What the stages' work depends on now: the profile, the DKD choice recorded in the results
    (it changes when the students stage runs) and the declaration."""
    from study.plan import recorded_dkd_selection
    from study.stages import STAGES
    from study.work import PlanSettings

    return PlanSettings(profile, recorded_dkd_selection(dataset, profile.name), tuple(STAGES))


def run_stages(stages, args, profile, settings, where, launcher, failed: list, time_left: st.TimeLeft) -> int:
    """Run every stage of ``stages`` that is not up to date, in order, one status line each
    (``study.status``; stages found up to date in a row share one line); names of failed stages
    go to ``failed``. Returns 1 at the first failure unless ``--keep-going``, else 0."""
    from common.cache import FORCE_RETRAIN, force_retrain
    from common.checkpoints import CHECKPOINT_LOG
    from common.cli import resolve_device
    from common.numerics import machine_kind
    from study import records

    machine = machine_kind(resolve_device(args.device or "auto"))
    total, skipped = len(stages), []

    def flush_skipped():
        if skipped:
            print(st.skipped_line(skipped[0][0], skipped[-1][0], total, [n for _, n in skipped]), flush=True)
            skipped.clear()

    for index, stage in enumerate(stages, start=1):
        why = ("FORCE=1" if forced(stage, args) else f"{FORCE_RETRAIN}=1" if force_retrain()
               else records.why_rerun(stage, profile, settings, where))
        if why is None:
            skipped.append((index, stage.name))
            time_left.skip(stage.name)
            continue
        flush_skipped()
        head = st.stage_head(index, total, stage.name, why)
        if args.verbose:
            print(f"{head}: running", flush=True)
        else:
            print(head, end="", flush=True)    # the line is ended when the stage ends
        load = MachineLoad(children=True, min_seconds=st.BUSY_MIN_SECONDS).start()
        checkpoint_log = records.forget(stage, where.run_dir)
        command = stage.command(sys.executable) + shared_flags(args, profile.study_name)
        log = log_of(where.log_dir, stage.name)
        try:
            if launcher is None:
                status = run_logged(command, log, {CHECKPOINT_LOG: str(checkpoint_log)}, echo=args.verbose)
            else:
                from study.launch import run_stage_on

                os.environ[CHECKPOINT_LOG] = str(checkpoint_log)
                status = run_stage_on(launcher, stage, settings, command, args)
        except KeyboardInterrupt:
            print(f": interrupted after {round(load.seconds)} s (its output: {log})", flush=True)
            raise
        missing = stage.missing_outputs(where.run_dir)
        problem = f"{stage.name} exited 0 but did not write {missing[0]}" if status == 0 and missing else ""
        status = status or (1 if problem else 0)
        load.stop()
        seconds = load.seconds
        busy = st.busy_note(load)
        time_left.finished(stage.name, seconds)
        if status == 0:
            settings = current_settings(profile, args.dataset)
            records.write_record(stage, profile, settings, where, seconds, machine)
        end = st.stage_end(status == 0, seconds, time_left.text(), busy)
        print(f"{head}{end}" if args.verbose else end, flush=True)
        if status == 0:
            continue
        if problem:
            print(f"{PREFIX} {problem}", file=sys.stderr)
        elif not args.verbose and launcher is None:
            show_tail(log)
        print(f"{PREFIX} FAILED at stage '{stage.name}' (command: {' '.join(command)})", file=sys.stderr, flush=True)
        failed.append(stage.name)
        if not args.keep_going:
            return 1
    flush_skipped()
    return 0


def missing_for_report(run_dir: Path) -> list[str]:
    """The tasks (results folders) that lack a declared output under ``run_dir``: the report
    needs every task's results."""
    from study.stages import STAGES

    return list(dict.fromkeys(s.task for s in STAGES if s.missing_outputs(run_dir)))


def build_report(args, profile, where, failed: list) -> None:
    """Rebuild the report (seconds; the PDF where LaTeX is installed), one status line; skipped
    in one line when some task has no results yet (a run of some tasks only)."""
    from study.stages import REPORT

    missing = missing_for_report(where.run_dir)
    if missing:
        print(f"{PREFIX} report skipped: it is built from every task's results and {', '.join(missing)} "
              f"has none yet (./run_all.sh with no target makes them all)", flush=True)
        return
    head = f"{PREFIX} report"
    print(head + (": running\n" if args.verbose else ""), end="", flush=True)
    t0 = time.monotonic()
    log = log_of(where.log_dir, "report")
    status = run_logged([sys.executable, REPORT, "--profile", profile.study_name, "--dataset", args.dataset,
                         *set_flags(args)], log, echo=args.verbose)
    end = st.stage_end(status == 0, time.monotonic() - t0)
    print(f"{head}{end}" if args.verbose else end, flush=True)
    if status:
        if not args.verbose:
            show_tail(log)
        failed.append("report")


def main(argv: list[str] | None = None) -> int:
    errors.install()
    args = build_parser().parse_with_environment(argv, ENVIRONMENT)
    if args.force_retrain:        # the stages read it from their environment (common.cache)
        os.environ["FORCE_RETRAIN"] = "1"
    from common.paths import PROJECT_ROOT, checkpoints_root, results_root, run_folder, writable_folder

    if not args.profile:    # choosing it loads torch (seconds): say so first
        print(f"{PREFIX} no --profile or PROFILE: full if torch sees a CUDA device, else cpu", flush=True)
    profile = run_profile(args, announce=False)   # a variant when --set / $OVERRIDES change a value
    if not args.profile:   # the stages are given --profile; their profile line says who chose it
        os.environ[PROFILE_ORIGIN] = "default of run_all.sh: " + ("CUDA available" if profile.study_name == "full" else "no CUDA")
    run = run_folder(args.dataset, profile.name)
    run_dir = results_root() / run
    log_dir = Path(args.log_dir) if args.log_dir else PROJECT_ROOT / "logs" / run
    print(f"{PREFIX} profile={profile.name} dataset={args.dataset} data={args.data_dir} outputs={run_dir} "
          f"logs={log_dir}/<stage>.log" + (" (shown live: --verbose)" if args.verbose else " (--verbose shows them live)"),
          flush=True)
    if busy := st.busy_at_start():
        print(f"{PREFIX} {busy}", flush=True)
    settings = current_settings(profile, args.dataset)   # the study (torch) is loaded from here on
    stages = select(args.targets, settings)              # an unknown target is one line, nothing written
    launcher = None
    if args.launcher != "local":    # SLURM is there, before anything is written or submitted
        from study.launch import job_executor

        launcher = job_executor(args.launcher,
                                Path(args.job_logs) if args.job_logs else PROJECT_ROOT / "logs" / "submitit" / run,
                                args.partition, args.time_minutes, args.gpus_per_job)
    # every folder it writes is checked before anything is written
    writable_folder(run_dir, "results folder", "RESULTS_DIR")
    checkpoints = writable_folder(checkpoints_root() / run, "checkpoints folder", "CHECKPOINT_DIR")
    writable_folder(log_dir, "log folder", "LOG_DIR or --log-dir")
    from study.records import RunFolders

    where = RunFolders(run_dir, checkpoints, args.dataset, Path(args.data_dir), log_dir)
    from common import data     # fetched once (jobs never download): missing, one line, no record forgotten

    data.ensure_dataset(args.dataset, args.data_dir)
    started, failed = time.monotonic(), []
    todo = stages_to_run(stages, args, profile, settings, where)
    time_left = st.TimeLeft(projection(todo, args, profile), [s.name for s in todo])
    signal.signal(signal.SIGTERM, _interrupt)   # a kill stops the stage as Ctrl-C does
    try:
        status = run_stages(stages, args, profile, settings, where, launcher, failed, time_left)
    except KeyboardInterrupt:
        print(f"\n{PREFIX} interrupted: {len(failed)} stage(s) failed before; every finished stage is recorded and "
              "an unfinished training resumes from its last epoch: run the same command again", file=sys.stderr)
        return 130
    if status:
        return status
    if not args.no_report:
        build_report(args, profile, where, failed)
    if failed:
        print(f"{PREFIX} {len(failed)} stage(s) failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    print(f"{PREFIX} all {len(stages)} stage(s) done in {round(time.monotonic() - started)} s; outputs in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
