"""Colour invariance: does a colour-jitter-robust teacher pass its robustness on?

The VGG-16 teacher T is fine-tuned with colour-jitter augmentation (brightness, contrast,
saturation, hue; the profile's finetune_epochs) into T_colour. Students are distilled from
T_colour with CRD, logit matching and hints using the regular augmentation only (crop and flip,
no colour jitter), and compared with the same methods from T and with S_I. Every model is
evaluated on the clean test images and on the same images colour-jittered with a fixed seed.

Writes results/<dataset>-<profile>/distillation/color_invariance.csv (model, teacher,
top1_clean, top1_jitter, jitter_drop_points).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402
from distillation.names import METHOD_NAMES, TEACHER, TEACHERS  # noqa: E402

METHODS = ("crd", "kd", "hints")


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=sorted(METHOD_NAMES))
    parser.add_argument("--teacher", default=TEACHER, choices=TEACHERS, help="baseline used as teacher")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.jobs import run_jobs
    from common.curves import curve_rows, write_curves
    from common.results import write_results
    from distillation.study import (JITTER_SEED, TASK, clean_and_jitter_top1, colour_label, colour_stage_jobs,
                                    get_colour_teacher, get_student, get_teacher)

    ctx = RunContext.from_args(args)
    teacher, teacher_meta = get_teacher(ctx, args.teacher)
    colour, colour_meta = get_colour_teacher(ctx, teacher, teacher_meta)
    label = colour_label(args.teacher)
    # the students first (concurrently with --jobs N; those from T are usually cached by 01)
    run_jobs(ctx, colour_stage_jobs(args.methods, args.teacher, ctx.seed), desc="students")
    models = [("T", "-", teacher), ("T_colour", "-", colour),
              ("S_I", "-", get_student(ctx, "independent")[0])]
    curves = curve_rows(colour_meta["name"], colour_meta.get("history", []))   # what this stage trains
    for method in args.methods:
        models.append((f"{method} student", args.teacher, get_student(ctx, method, teacher, teacher_meta)[0]))
        student, meta = get_student(ctx, method, colour, colour_meta, teacher_label=label)
        models.append((f"{method} student", label, student))
        curves += curve_rows(meta["name"], meta["history"], method=method)
    rows = []
    for name, source, model in models:
        rows.append({"model": name, "teacher": source, **clean_and_jitter_top1(model, ctx)})
        print(f"[colour] {name:14s} from {source:14s} clean {rows[-1]['top1_clean']:.2f}% "
              f"jitter {rows[-1]['top1_jitter']:.2f}%")
    write_results(rows, ctx.results_dir(TASK) / "color_invariance.csv",
                  ctx.provenance(teacher=args.teacher, jitter_seed=JITTER_SEED,
                                 colour_teacher_finetune_epochs=colour_meta["epochs"]))
    write_curves(curves, ctx.results_dir(TASK) / "color_invariance_curves.csv", ctx.provenance(teacher=args.teacher))


if __name__ == "__main__":
    main()
