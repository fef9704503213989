"""Teacher-student distribution discrepancy on the test split, for every student of 01_students.

Per student: KL(p_T || p_S) of probabilities softened at T=4 (nats, mean over images), top-1
agreement with the teacher (% of test images), and the mean cosine similarity of the T=1
probability vectors. Students come from the cache (trained if missing, as in 01_students).

Writes results/<dataset>-<profile>/distillation/alignment.csv.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402
from distillation.names import STUDENT_METHODS, TEACHER, TEACHERS  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--methods", nargs="+", choices=list(STUDENT_METHODS), default=list(STUDENT_METHODS))
    parser.add_argument("--teacher", default=TEACHER, choices=TEACHERS, help="baseline used as teacher")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.cli import RunContext
    from common.results import write_results
    from distillation.study import TASK, alignment, get_teacher, study_student, teacher_provenance

    ctx = RunContext.from_args(args)
    teacher, teacher_meta = get_teacher(ctx, args.teacher)
    rows = []
    for method in args.methods:
        student, meta = study_student(ctx, method, teacher, teacher_meta)
        rows.append({"method": method, "teacher": args.teacher, "top1_acc": meta["test_top1_acc"],
                     **alignment(student, teacher, ctx.splits.test_images, ctx.dataset)})
        print(f"[alignment] {method}: " + ", ".join(f"{k}={v:.4g}" for k, v in rows[-1].items()
                                                    if isinstance(v, float)))
    write_results(rows, ctx.results_dir(TASK) / "alignment.csv",
                  ctx.provenance(**teacher_provenance(teacher_meta)))


if __name__ == "__main__":
    main()
