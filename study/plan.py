"""The cost plan of ``./run_all.sh``: every training it does for a profile, and what it will cost.

    python -m study.plan --profile cpu --dataset cifar10 --data-dir /path/to/folder
    python -m study.plan --profile full --dataset cifar100 --throughput results/device_check/cifar10-cuda/throughput.csv
    python -m study.plan ... --compare-measured      # projected vs measured seconds per stage

Lists every training of a fresh run (one call of ``common.training.fit`` each) with its stage,
job name (the checkpoint name, or ``fit``'s label for a training nothing caches), model, epochs,
training images per epoch, teacher and projected minutes; then the evaluation work of each stage,
per-stage subtotals and, last, ``projected_minutes=<float>``.

Everything counted comes from the stage declaration (``study.stages``): each stage's work
(``study.stage_work``: its jobs, read from the function the stage runs them with, its script's
own defaults and the constants its code iterates over). A checkpoint that a later stage reuses
is counted once, under the first stage that trains it. Counting needs only the profile and the
standard CIFAR split sizes: no data is loaded unless the plan measures throughput itself (no
``--throughput`` file and no earlier measurement of this device).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.profiles import Profile

if TYPE_CHECKING:
    from study.projection import Projection
    from study.throughput import ThroughputTable
    from study.work import Evaluation, Training

# The stage declaration, the projection and the results layout import torch: the functions below
# import what they use when called, so that --help needs none of them. This module still offers
# these names as its own (``study.plan.STAGES``, ``plan.project``...), imported on first use.
_REEXPORTED = {
    "STAGES": "study.stages",
    **dict.fromkeys(("Projection", "concurrent_seconds", "needed_keys", "project"), "study.projection"),
    **dict.fromkeys(("MissingThroughput", "ThroughputTable"), "study.throughput"),
    **dict.fromkeys(("SEED", "Evaluation", "PlanSettings", "Sizes", "Training"), "study.work"),
}


def __getattr__(name: str):
    """``study.plan.<name>`` of a re-exported name: imported now, then kept as this module's own."""
    if name not in _REEXPORTED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(importlib.import_module(_REEXPORTED[name]), name)
    return value


def _stages() -> list:
    """``study.stages.STAGES``, as this module has it now (a test may put other stages in its place)."""
    return sys.modules[__name__].STAGES


@dataclass
class Work:
    """Every training (each counted once) and evaluation of a run, in stage order."""

    jobs: list[Training]
    evaluations: list[Evaluation]
    reused: dict[str, list[str]]     # stage -> cached trainings it reuses from an earlier stage
    stages: list[str]
    notes: list[str]
    pooled: tuple[str, ...] = ()     # the stages whose trainings run as jobs (concurrently with --jobs N)


def pooled_stages() -> tuple[str, ...]:
    """The stages whose trainings run as jobs through the worker pool (concurrently with --jobs N)."""
    return tuple(stage.name for stage in _stages() if stage.jobs is not None)


def plan_work(profile: Profile, dkd_selected: str | None = None, stages=None) -> Work:
    """Every training and evaluation of a fresh run of ``profile`` (``stages``, default every
    stage of ``study.stages``), in stage order; a cached training asked for again by a later stage
    is listed once, under the first stage.

    ``dkd_selected``: the DKD candidate chosen on validation (None: unknown, assumed not the
    published ``dkd``, whose seeds 1-2 would otherwise be shared with ``dkd_tuned``'s)."""
    from study.work import PlanSettings

    stages = _stages() if stages is None else stages
    notes = []
    if dkd_selected is None:
        notes.append("DKD selection not known: assumed to be a candidate other than the published 'dkd' "
                     "(if 'dkd' is selected, dkd_tuned's seeds 1-2 reuse dkd's students)")
    settings = PlanSettings(profile, dkd_selected, tuple(_stages()))
    seen: set[str] = set()
    jobs, evaluations, reused = [], [], {}
    for stage in stages:
        work = stage.work(stage, settings)
        for job in work.jobs:
            if job.cached and job.name in seen:
                reused.setdefault(stage.name, []).append(job.name)
                continue
            seen.add(job.name)
            jobs.append(job)
        evaluations += work.evaluations
    return Work(jobs, evaluations, reused, [stage.name for stage in stages], notes,
                tuple(stage.name for stage in stages if stage.jobs is not None))


def job_rows(profile: Profile, dkd_selected: str | None = None) -> list[dict]:
    """One dict per training of ``plan_work``: stage, job, model, epochs, images_per_epoch,
    teacher, variant, train_images, eval_images (counts of images)."""
    return [{"job": j.name, **{k: v for k, v in asdict(j).items() if k != "name"}, "train_images": j.train_images}
            for j in plan_work(profile, dkd_selected).jobs]


def recorded_dkd_selection(dataset: str, profile_name: str) -> str | None:
    """The DKD candidate selected in ``results/<dataset>-<profile>/distillation/dkd_tuning.csv``
    (a fresh run of the same code and data selects it again), else None."""
    from common.results import read_rows, results_root, run_folder

    rows = read_rows(results_root() / run_folder(dataset, profile_name) / "distillation" / "dkd_tuning.csv")
    selected = [r["candidate"] for r in rows if r.get("selected") == "True"]
    return selected[0] if len(selected) == 1 else None


# ----------------------------------------------------------------------------- measured costs


def measured_stage_seconds(dataset: str, profile_name: str) -> dict[str, float]:
    """Measured wall seconds per run_all stage of ``results/<dataset>-<profile>/``, as the
    cost table of combined/README.md has them (``study.readme.cost_rows``: from the provenance sidecars;
    baselines and students count their training time). Its 'baselines/common.train' is
    run_all's stage 'baselines'."""
    from common.results import run_folder
    from study.readme import cost_rows

    return {("baselines" if r["stage"].startswith("baselines/") else r["stage"]): float(r["wall_seconds"])
            for r in cost_rows(run_folder(dataset, profile_name))}


def comparison_rows(projection: Projection, measured: dict[str, float]) -> list[dict]:
    """Per stage: projected and measured seconds and measured / projected; then the totals
    over the stages that have a measurement."""
    rows = []
    for r in projection.stage_rows:
        real = measured.get(r["stage"])
        rows.append({"stage": r["stage"], "projected_seconds": round(r["projected_seconds"]),
                     "measured_seconds": "" if real is None else round(real),
                     "measured_over_projected": "" if real is None or not r["projected_seconds"]
                     else round(real / r["projected_seconds"], 2)})
    both = [r for r in rows if r["measured_seconds"] != ""]
    projected, real = sum(r["projected_seconds"] for r in both), sum(r["measured_seconds"] for r in both)
    rows.append({"stage": f"total ({len(both)} measured stages)", "projected_seconds": projected,
                 "measured_seconds": real, "measured_over_projected": round(real / projected, 2) if projected else ""})
    return rows


# ----------------------------------------------------------------------------- command line


def _shown(path: Path | str) -> str:
    from common.results import PROJECT_ROOT

    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def cached_throughput_path(dataset: str, profile_name: str) -> Path:
    """Where the plan keeps its own measurement: ``results/<dataset>-<profile>/plan/throughput.csv``."""
    from common.results import results_root, run_folder

    return results_root() / run_folder(dataset, profile_name) / "plan" / "throughput.csv"


def cached_throughput(args: argparse.Namespace, profile: Profile, work: Work) -> ThroughputTable | None:
    """The plan's earlier measurement on this device when it covers ``work``, else None (nothing measured)."""
    from common.cli import resolve_device
    from common.results import device_description
    from study.projection import needed_keys
    from study.throughput import read_cached

    cache = cached_throughput_path(args.dataset, profile.name)
    cached = read_cached(cache, device_description(resolve_device(args.device)), profile.width, profile.batch_size)
    if cached is None or not cached.covers(*needed_keys(work)):
        return None
    cached.source = f"{_shown(cache)} (measured earlier on this device; --remeasure to redo)"
    return cached


def resolve_throughput(args: argparse.Namespace, profile: Profile, work: Work) -> ThroughputTable:
    """--throughput CSV, else the plan's earlier measurement on this device (unless
    --remeasure), else a short benchmark now (loads the data), written with provenance."""
    from common.cli import RunContext
    from common.results import write_results
    from study.projection import needed_keys
    from study.throughput import measure_throughput, read_throughput_csv

    if args.throughput:
        return read_throughput_csv(args.throughput, profile.width, profile.batch_size,
                                   device=f"unknown (not recorded in {_shown(args.throughput)})")
    cached = None if args.remeasure else cached_throughput(args, profile, work)
    if cached is not None:
        return cached
    cache = cached_throughput_path(args.dataset, profile.name)
    train_keys, infer_keys = needed_keys(work)
    ctx = RunContext.from_args(args)
    table = measure_throughput(ctx, train_keys, infer_keys, profile.width, profile.batch_size,
                               args.steps, args.warmup, args.rounds)
    write_results(table.rows(), cache, ctx.provenance(timed_steps=args.steps, warmup_steps=args.warmup,
                                                      rounds=args.rounds, reading="fastest of the rounds",
                                                      what="training and inference images/s for study.plan"))
    return table


def _table(rows: list[dict], columns: list[str]) -> str:
    from study.readme import markdown_table

    return markdown_table(rows, columns) if rows else "(none)\n"


def print_plan(profile: Profile, dataset: str, work: Work, projection: Projection,
               throughput: ThroughputTable, data_note: str) -> None:
    """The header, figures, trainings, evaluations and per-stage subtotals (markdown tables)."""
    from study.work import Sizes

    z = Sizes.of(profile)
    print(f"plan: profile={profile.name} dataset={dataset} width={profile.width:g} batch={profile.batch_size}")
    print(f"device: {throughput.device}")
    print(f"throughput: {throughput.source}")
    print(f"images: train split {z.train:,} ({z.per_epoch:,} drawn per epoch), val {z.val:,}, test {z.test:,}, "
          f"calibration {z.calibration:,}; {data_note}")
    for note in work.notes:
        print(f"note: {note}")
    print("\nThroughput figures used (images/s):\n")
    print(_table(projection.figures, ["pass", "model", "teacher", "variant", "images_per_second", "source", "note"]))
    print(f"Trainings ({len(projection.job_rows)}, each counted once):\n")
    print(_table(projection.job_rows, ["stage", "job", "model", "epochs", "images_per_epoch", "teacher", "variant",
                                       "eval_images", "projected_minutes"]))
    print("Evaluation work outside trainings:\n")
    print(_table([{**e, "minutes": round(e["seconds"] / 60, 2)} for e in projection.evaluation_rows],
                 ["stage", "what", "model", "variant", "images", "minutes"]))
    print("Per stage:\n")
    print(_table(projection.stage_rows, ["stage", "trainings", "epochs", "train_images", "eval_images",
                                         "reused_trainings", "projected_minutes"]))
    print(f"Total: {len(projection.job_rows)} trainings, {sum(r['epochs'] for r in projection.job_rows)} "
          f"epochs, {projection.total_minutes:.1f} minutes projected on {throughput.device}.")


def concurrency(args: argparse.Namespace, device: str) -> tuple[int, float, str]:
    """(workers, speedup, note): ``--jobs`` (default: ``common.jobs.default_jobs`` of ``device``,
    the description of the device the figures were measured on)
    and how much faster that many processes train together than one, read by
    ``concurrency_speedup`` from ``--concurrency`` (a device check's throughput.csv). Without
    that reading the trainings are priced one at a time, whatever the workers."""
    from common.jobs import default_jobs
    from study.throughput import concurrency_speedup

    workers = args.jobs or default_jobs("cuda" if device.startswith("cuda") else "cpu")
    if workers <= 1:
        return 1, 1.0, "trainings run one at a time (--jobs 1)"
    speedup = concurrency_speedup(args.concurrency, workers) if args.concurrency else None
    if speedup is None:
        return 1, 1.0, (f"trainings priced one at a time: no reading of {workers} concurrent processes "
                        "(give --concurrency with a device check's throughput.csv); with --jobs "
                        f"{workers} the stages {', '.join(pooled_stages())} can take less wall time")
    return workers, speedup, (f"{', '.join(pooled_stages())}: trainings on {workers} workers, "
                              f"{speedup:.2f}x one process's throughput (VGG-11, {_shown(args.concurrency)})")


def write_projection(projection: Projection, measured: dict[str, float], path: Path, ctx_fields: dict) -> None:
    """``plan/projection.csv``: per stage trainings, projected and measured seconds and their
    ratio, then the total; provenance names the throughput source, device and concurrency."""
    from common.results import provenance, write_results

    compared = {r["stage"]: r for r in comparison_rows(projection, measured)} if measured else {}
    rows = [{"stage": r["stage"], "trainings": r["trainings"], "projected_seconds": round(r["projected_seconds"]),
             "measured_seconds": compared.get(r["stage"], {}).get("measured_seconds", ""),
             "measured_over_projected": compared.get(r["stage"], {}).get("measured_over_projected", "")}
            for r in projection.stage_rows]
    total_measured = sum(r["measured_seconds"] for r in rows if r["measured_seconds"] != "")
    rows.append({"stage": "total", "trainings": sum(r["trainings"] for r in rows),
                 "projected_seconds": round(projection.total_seconds),
                 "measured_seconds": round(total_measured) if measured else "",
                 "measured_over_projected": round(total_measured / projection.total_seconds, 2) if measured else ""})
    write_results(rows, path, provenance(**ctx_fields, projected_minutes=round(projection.total_minutes, 1),
                                         measured_minutes=round(total_measured / 60, 1) if measured else ""))


def projected_stage_seconds(stages, flags: list[str], measure: bool = True) -> tuple[dict[str, float], str] | None:
    """(projected seconds per stage name, throughput source) of running ``stages`` (a part of the
    declaration) with the plan's command-line ``flags`` (profile, dataset, data folder, device,
    workers): its throughput figures are this device's earlier measurement, else a short benchmark
    now (cached); with ``measure`` False, None instead of a benchmark."""
    from common.profiles import run_profile
    from study.projection import project

    args = build_parser().parse_args(flags)
    profile = run_profile(args, announce=False)
    work = plan_work(profile, recorded_dkd_selection(args.dataset, profile.name), stages)
    if not measure and not args.throughput and cached_throughput(args, profile, work) is None:
        return None
    throughput = resolve_throughput(args, profile, work)
    workers, speedup, _ = concurrency(args, throughput.device)
    projection = project(work, throughput, workers, speedup)
    return {r["stage"]: float(r["projected_seconds"]) for r in projection.stage_rows}, throughput.source


def build_parser() -> argparse.ArgumentParser:
    """The plan's command line: the shared flags and where its throughput figures come from."""
    from common.flags import Parser, add_common_args

    parser = add_common_args(Parser(description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--throughput", default=None,
                        help="CSV of images/s (model, width, batch_size, [teacher], [variant], "
                             "train_images_per_second, [infer_images_per_second]), e.g. "
                             "results/device_check/<dataset>-<device>/throughput.csv; no data is loaded")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per benchmark (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them (default 2)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="readings per figure; the fastest is kept (default 3)")
    parser.add_argument("--remeasure", action="store_true",
                        help="benchmark again even if results/<dataset>-<profile>/plan/throughput.csv has this device")
    parser.add_argument("--compare-measured", action="store_true",
                        help="also print projected vs measured seconds per stage (provenance sidecars "
                             "of results/<dataset>-<profile>/)")
    parser.add_argument("--concurrency", default=None,
                        help="a device check's throughput.csv with concurrent VGG-11 readings: prices the "
                             "pooled stages' trainings on --jobs workers")
    parser.add_argument("--dkd-selected", default=None,
                        help="the DKD candidate selected on validation (default: the one recorded in "
                             "results/<dataset>-<profile>/distillation/dkd_tuning.csv, if any)")
    return parser


def main(argv: list[str] | None = None) -> None:
    from common.profiles import run_profile

    args = build_parser().parse_args(argv)
    from common.cli import resolve_device
    from common.results import results_root, run_folder
    from study.projection import project
    from study.throughput import MissingThroughput
    from study.work import SEED

    started = time.time()
    profile = run_profile(args, announce=False)
    dkd = args.dkd_selected or recorded_dkd_selection(args.dataset, profile.name)
    work = plan_work(profile, dkd_selected=dkd)
    if dkd:
        work.notes.append(f"DKD selection: {dkd}" + ("" if args.dkd_selected else " (recorded in dkd_tuning.csv)"))
    try:
        throughput = resolve_throughput(args, profile, work)
        workers, speedup, note = concurrency(args, throughput.device)
        work.notes.append(note)
        projection = project(work, throughput, workers, speedup)
    except MissingThroughput as exc:
        raise SystemExit(f"error: {exc}") from None
    measured_now = throughput.source.startswith("measured now")
    data_note = ("data loaded only to measure throughput" if measured_now
                 else "counted from the profile and the standard CIFAR sizes, no data loaded")
    print_plan(profile, args.dataset, work, projection, throughput, data_note)
    if args.compare_measured:
        measured = measured_stage_seconds(args.dataset, profile.name)
        print(f"\nProjected vs measured wall seconds (results/{run_folder(args.dataset, profile.name)}/, "
              "as the cost table of combined/README.md):\n")
        if measured:
            print(_table(comparison_rows(projection, measured),
                         ["stage", "projected_seconds", "measured_seconds", "measured_over_projected"]))
        else:
            print(f"(no measured results under results/{run_folder(args.dataset, profile.name)}/)\n")
    measured = measured_stage_seconds(args.dataset, profile.name)
    out = results_root() / run_folder(args.dataset, profile.name) / "plan" / "projection.csv"
    write_projection(projection, measured, out, {
        "profile": profile.name, "dataset": args.dataset, "seed": SEED, "device": resolve_device(args.device),
        "started": started, "throughput_source": throughput.source, "throughput_device": throughput.device,
        "workers": workers, "concurrency_speedup": round(speedup, 3)})
    print(f"projected_minutes={projection.total_minutes:.1f}")


if __name__ == "__main__":
    sys.exit(main())
