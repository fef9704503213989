"""Train the VGG-11 students from the VGG-16 teacher: the independent student S_I (cross-entropy
only), label smoothing, logit matching (KD), decoupled KD, FitNets hints and CRD.

Every student starts from the same seeded initial weights and trains with the same recipe (the
profile's student_epochs, augmentation, one-cycle schedule, seed); only the loss differs. Method
settings are the published CIFAR-100 ones (see distillation/methods/). The teacher is the cached
baseline (trained by the foundation if missing); students are cached in checkpoints/.

Writes results/<dataset>-<profile>/distillation/students.csv (method, teacher, seed, epochs,
top1_acc, top5_acc on test, val_top1_acc, train_seconds, selected_settings), dkd_tuning.csv (every
DKD candidate's settings, validation and test top-1; dkd_tuned is the best on validation) and,
with several --seeds, students_summary.csv (mean and standard deviation of top-1 per method).
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.cli import RunContext, add_common_args  # noqa: E402
from common.results import write_results  # noqa: E402
from distillation.study import (STUDENTS, TASK, TEACHER, TUNED_DKD, get_teacher,  # noqa: E402
                                seed_summary, student_row, study_student, tune_dkd)


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--methods", nargs="+", choices=list(STUDENTS), default=list(STUDENTS),
                        help="students to train (the six methods as published and dkd_tuned, DKD with "
                             "the candidate settings best on validation)")
    parser.add_argument("--teacher", default=TEACHER, help="baseline used as teacher")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="student seeds (default: --seed); the full profile reports mean and std")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    teacher, teacher_meta = get_teacher(ctx, args.teacher)  # one teacher (of --seed) for every seed
    rows = []
    for seed in args.seeds or [ctx.seed]:
        run = replace(ctx, seed=seed)
        for name in args.methods:
            rows.append(student_row(study_student(run, name, teacher, teacher_meta,
                                                  selection_seed=ctx.seed)[1]))
    prov = ctx.provenance(teacher=args.teacher, teacher_top1=teacher_meta["test_top1_acc"],
                          seeds=args.seeds or [args.seed])
    write_results(rows, ctx.results_dir(TASK) / "students.csv", prov)
    if TUNED_DKD in args.methods:  # the candidates behind dkd_tuned, chosen on validation
        write_results(tune_dkd(ctx, teacher, teacher_meta)[1], ctx.results_dir(TASK) / "dkd_tuning.csv",
                      prov)
    if len(args.seeds or []) > 1:
        write_results(seed_summary(rows), ctx.results_dir(TASK) / "students_summary.csv", prov)


if __name__ == "__main__":
    main()
