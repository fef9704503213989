"""Teacher size: logit-matching (KD) students from the VGG-16 and the VGG-19 teacher.

Same student recipe and KD settings for both; per teacher: its test top-1, the student's, and the
student's KL to its own teacher (softened at T=4) and top-1 agreement with it.

Writes results/<dataset>-<profile>/distillation/teacher_size.csv.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402
from distillation.names import METHOD_NAMES, TEACHERS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--teachers", nargs="+", default=["vgg16", "vgg19"], choices=TEACHERS)
    parser.add_argument("--method", default="kd", choices=sorted(METHOD_NAMES))
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.jobs import run_jobs
    from common.models import count_parameters
    from common.curves import curve_rows, write_curves
    from common.results import write_results
    from distillation.study import TASK, alignment, get_student, get_teacher, method_student_jobs

    ctx = RunContext.from_args(args)
    run_jobs(ctx, method_student_jobs([args.method], args.teachers, seed=ctx.seed), desc="students")
    rows, curves = [], []
    for name in args.teachers:
        teacher, teacher_meta = get_teacher(ctx, name)
        student, meta = get_student(ctx, args.method, teacher, teacher_meta)
        curves += curve_rows(meta["name"], meta["history"], teacher=name)
        measures = alignment(student, teacher, ctx.splits.test_images, ctx.dataset)
        rows.append({"teacher": name, "teacher_params": count_parameters(teacher),
                     "teacher_top1": teacher_meta["test_top1_acc"], "method": args.method,
                     "student_top1": meta["test_top1_acc"], "kl_to_teacher": measures["kl_to_teacher"],
                     "agreement": measures["top1_agreement"], "temperature": measures["temperature"]})
        print(f"[teacher-size] {name}: teacher {rows[-1]['teacher_top1']:.2f}% -> student "
              f"{rows[-1]['student_top1']:.2f}%, KL {rows[-1]['kl_to_teacher']:.4f}, agreement {rows[-1]['agreement']:.2f}%")
    write_results(rows, ctx.results_dir(TASK) / "teacher_size.csv", ctx.provenance(method=args.method))
    write_curves(curves, ctx.results_dir(TASK) / "teacher_size_curves.csv", ctx.provenance(method=args.method))


if __name__ == "__main__":
    main()
