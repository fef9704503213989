"""Train the VGG-11 students from the VGG-16 teacher: the independent student S_I (cross-entropy
only), label smoothing, logit matching (KD), decoupled KD, FitNets hints and CRD.

Every student starts from the same seeded initial weights and trains with the same recipe (the
profile's student_epochs, augmentation, one-cycle schedule, seed); only the loss differs. Method
settings are the published CIFAR-100 ones (see distillation/methods/). The teacher is the cached
baseline (trained by the foundation if missing); students are cached in checkpoints/.

Writes results/<dataset>-<profile>/distillation/students.csv (method, teacher, seed, epochs,
top1_acc, top5_acc on test, val_top1_acc, train_seconds, selected_settings), dkd_tuning.csv (every
DKD candidate's settings, validation and test top-1, at --seed; dkd_tuned is the best on
validation, and that choice trains every seed) and, with several seeds, students_summary.csv (mean
and standard deviation of top-1 per method).

Run alone with no flags it trains what the study trains: every method at the study's seeds (0 1 2;
the smoke profile's --seed). Other --methods or --seeds make a variant, written into its own folder
(``results/<dataset>-<profile>+seeds=1,2/``...), never over the study's students.csv; within one
folder, rows of other seeds written with the same teacher and recipe are kept, and the DKD choice is
read from dkd_tuning.csv instead of retraining the candidates; the provenance names both runs.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402
from distillation.names import STUDENT_METHODS, STUDY_SEEDS, TEACHER, TEACHERS, student_seeds  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--methods", nargs="+", choices=list(STUDENT_METHODS), default=list(STUDENT_METHODS),
                        help="students to train (the six methods as published and dkd_tuned, DKD with "
                             "the candidate settings best on validation)")
    parser.add_argument("--teacher", default=TEACHER, choices=TEACHERS, help="baseline used as teacher")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help=f"student seeds (default: the study's, {' '.join(map(str, STUDY_SEEDS))}; "
                             "--seed on the smoke profile); rows of other seeds already in the run's "
                             "students.csv from the same teacher and recipe are kept. --seed is the seed "
                             "DKD's settings are chosen at")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.curves import curve_rows, write_curves
    from common.jobs import run_jobs
    from common.results import write_results
    from distillation.study import (TASK, TUNED_DKD, get_teacher, kept_student_rows, recorded_dkd_selection,
                                    student_row, students_stage_jobs, study_student, teacher_provenance,
                                    tune_dkd)
    from distillation.summary import seed_summary

    ctx = RunContext.from_args(args)
    seeds = student_seeds(args.seeds, ctx.seed, ctx.profile.study_name)
    teacher, teacher_meta = get_teacher(ctx, args.teacher)  # one teacher (of --seed) for every seed
    teacher_prov = teacher_provenance(teacher_meta)

    # Train first, concurrently with --jobs N: every student that does not wait for the DKD
    # choice, and the DKD candidates when the choice is made now (on validation at --seed, once,
    # for every seed); then the chosen candidate at the other seeds. Rows are read from the cache.
    dkd_selected = None
    if TUNED_DKD in args.methods and ctx.seed not in seeds:
        dkd_selected = recorded_dkd_selection(ctx, teacher_meta)
        if dkd_selected is not None:
            print(f"[dkd] selection at seed {ctx.seed} read from dkd_tuning.csv: {dkd_selected}")
    tune_now = TUNED_DKD in args.methods and dkd_selected is None
    first, _ = students_stage_jobs(args.methods, seeds, args.teacher, ctx.seed, dkd_selected, tune=tune_now)
    run_jobs(ctx, first, desc="students")
    if tune_now:
        dkd_selected, tuning = tune_dkd(ctx, teacher, teacher_meta)
        write_results(tuning, ctx.results_dir(TASK) / "dkd_tuning.csv", ctx.provenance(**teacher_prov))
    if TUNED_DKD in args.methods:
        run_jobs(ctx, students_stage_jobs([TUNED_DKD], seeds, args.teacher, ctx.seed, dkd_selected, False)[1],
                 desc="dkd_tuned")

    rows, curves = [], []
    for seed in seeds:
        run = ctx.but(seed=seed)
        for name in args.methods:
            meta = study_student(run, name, teacher, teacher_meta, dkd_selected)[1]
            rows.append(student_row(meta))
            curves += curve_rows(meta["name"], meta["history"], method=name)
    kept, kept_from = kept_student_rows(ctx, teacher_meta, seeds)
    rows = sorted(kept + rows, key=lambda r: int(r["seed"]))  # stable: method order kept per seed
    all_seeds = sorted({int(r["seed"]) for r in rows})
    prov = ctx.provenance(**teacher_prov, seeds=all_seeds, seeds_trained=seeds,
                          **({"kept_rows_from": {k: kept_from.get(k) for k in  # a chain back to each run
                                                 ("git_commit", "finished_utc", "seeds", "seeds_trained",
                                                  "command", "kept_rows_from") if k in kept_from}}
                             if kept else {}))
    write_results(rows, ctx.results_dir(TASK) / "students.csv", prov)
    methods = {c["model"]: c["method"] for c in curves}
    write_curves(curves, ctx.results_dir(TASK) / "student_curves.csv", ctx.provenance(**teacher_prov, seeds=seeds),
                 f"Students (VGG-11) from {args.teacher}: training curves ({ctx.dataset}, {ctx.profile.name} profile)",
                 label=methods.get)
    summary = ctx.results_dir(TASK) / "students_summary.csv"
    if len(all_seeds) > 1:
        write_results(seed_summary(rows), summary, prov)
    else:  # one seed: a summary of an earlier, several-seed file would no longer describe students.csv
        for stale in (summary, summary.with_suffix(".json")):
            stale.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
