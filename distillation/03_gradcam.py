"""Localization transfer: Grad-CAM maps of the teacher, every distilled student and S_I on a fixed,
seeded set of test images (true class, fourth conv stage, 4x4 maps upsampled), each compared
with the teacher's map of the same image: Pearson correlation of the maps and IoU of their
top-20% regions -- a documented equivalent of the map-similarity measure of Ojha et al. (2023).

Writes results/<dataset>-<profile>/distillation/gradcam_localization.csv (per image and model),
gradcam_localization_summary.csv (mean and std per model) and gradcam_localization.png (rows named
by class and test image, one colour bar for the normalised heat).
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args, positive_int  # noqa: E402
from distillation.names import TEACHER, TEACHERS  # noqa: E402


def summary_rows(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation of each similarity per model."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        chosen = [r for r in rows if r["model"] == model]
        row = {"model": model, "images": len(chosen)}
        for key in ("cam_pearson_to_teacher", "cam_top20_iou_to_teacher"):
            values = [float(r[key]) for r in chosen]
            row[f"{key}_mean"] = round(statistics.mean(values), 4)
            row[f"{key}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
        out.append(row)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--images", type=positive_int, default=64, help="test images (seeded choice)")
    parser.add_argument("--teacher", default=TEACHER, choices=TEACHERS, help="baseline used as teacher")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.data import class_names
    from common.figures import plot_cam_grid
    from common.gradcam import compare_cams, seeded_images
    from common.results import write_results
    from distillation.study import STUDENTS, TASK, get_teacher, study_student

    ctx = RunContext.from_args(args)
    teacher, teacher_meta = get_teacher(ctx, args.teacher)
    models = {"teacher": teacher}
    for name in STUDENTS:
        models["S_I" if name == "independent" else name] = study_student(ctx, name, teacher, teacher_meta)[0]
    ids, images, labels = seeded_images(ctx.splits.test_images, ctx.splits.test_labels, args.images, ctx.seed)
    rows, cams = compare_cams(models, "teacher", ids, images, labels, ctx.dataset)
    out = ctx.results_dir(TASK)
    prov = ctx.provenance(teacher=args.teacher, cam_layer="stages[3] (4x4)", target="true class",
                          image_seed=ctx.seed)
    write_results(rows, out / "gradcam_localization.csv", prov)
    write_results(summary_rows(rows), out / "gradcam_localization_summary.csv", prov)
    names = class_names(ctx.dataset)
    plot_cam_grid(images, cams, [f"{names[int(y)]}\ntest image {i}" for i, y in zip(ids, labels)],
                  out / "gradcam_localization.png",
                  titles={"teacher": f"teacher\n({args.teacher.upper().replace('VGG', 'VGG-')})",
                          "S_I": "S_I (student\ntrained alone)"})


if __name__ == "__main__":
    main()
