"""Grad-CAM of the original, 70%-unstructured and 70%-structured VGG-11 on a fixed, seeded set of
test images, for each image's true class, at the fourth conv stage (4x4 maps, upsampled).

Similarity to the original's map per image: Pearson correlation of the maps and IoU of their
top-20% regions. Writes results/<dataset>-<profile>/pruning/gradcam_pruning.csv (image_id, model,
label, predicted, correct, cam_pearson_to_original, cam_top20_iou_to_original) and
gradcam_pruning.png (a grid of the first images, rows named by class and test image).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from common.flags import StageParser, add_common_args  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command line of this stage (its shared flags and its own); built without running
    anything, so importing the script and calling this reads its flags and defaults."""
    parser = add_common_args(StageParser(description=__doc__))
    parser.add_argument("--images", type=int, default=32, help="test images (seeded choice)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # imported here, after parsing: --help and build_parser() import no torch
    from common.baselines import get_baseline
    from common.cli import RunContext
    from common.data import class_names
    from common.figures import plot_cam_grid
    from common.gradcam import compare_cams, seeded_images
    from common.results import write_results
    from pruning.study import TASK, get_structured_final, get_unstructured_final

    ctx = RunContext.from_args(args)
    models = {"original": get_baseline(ctx, "vgg11")[0], "unstructured": get_unstructured_final(ctx)[0],
              "structured": get_structured_final(ctx)[0]}
    ids, images, labels = seeded_images(ctx.splits.test_images, ctx.splits.test_labels, args.images, ctx.seed)
    rows, cams = compare_cams(models, "original", ids, images, labels, ctx.dataset)
    out = ctx.results_dir(TASK)
    write_results(rows, out / "gradcam_pruning.csv",
                  ctx.provenance(cam_layer="stages[3] (4x4)", target="true class", image_seed=ctx.seed))
    names = class_names(ctx.dataset)
    plot_cam_grid(images, cams, [f"{names[int(y)]}\ntest image {i}" for i, y in zip(ids, labels)],
                  out / "gradcam_pruning.png",
                  titles={"original": "original\nVGG-11", "unstructured": "70% unstructured\n(fine-tuned)",
                          "structured": "70% channel-pruned\n(fine-tuned)"})


if __name__ == "__main__":
    main()
