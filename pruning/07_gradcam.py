"""Grad-CAM of the original, 70%-unstructured and 70%-structured VGG-11 on a fixed, seeded set of
test images, for each image's true class, at the fourth conv stage (4x4 maps, upsampled).

Similarity to the original's map per image: Pearson correlation of the maps and IoU of their
top-20% regions. Writes results/<dataset>-<profile>/pruning/gradcam_pruning.csv (image_id, model,
label, predicted, correct, cam_pearson_to_original, cam_top20_iou_to_original) and
gradcam_pruning.png (a grid of the first images).
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import torch  # noqa: E402

from common.baselines import get_baseline  # noqa: E402
from common.cli import RunContext, add_common_args  # noqa: E402
from common.gradcam import cam_pearson, gradcam_maps, top_fraction_iou  # noqa: E402
from common.results import write_results  # noqa: E402
from common.training import predict_logits  # noqa: E402
from pruning.plots import plot_cam_grid  # noqa: E402
from pruning.study import TASK, get_structured_final, get_unstructured_final  # noqa: E402


def main(argv=None):
    parser = add_common_args(argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--images", type=int, default=32, help="test images (seeded choice)")
    args = parser.parse_args(argv)
    ctx = RunContext.from_args(args)
    models = {"original": get_baseline(ctx, "vgg11")[0], "unstructured": get_unstructured_final(ctx)[0],
              "structured": get_structured_final(ctx)[0]}
    test_x, test_y = ctx.splits.test_images, ctx.splits.test_labels
    ids = torch.randperm(len(test_x), generator=torch.Generator().manual_seed(ctx.seed))[:args.images]
    images, labels = test_x[ids], test_y[ids]
    cams = {name: gradcam_maps(m, images, ctx.dataset, labels) for name, m in models.items()}
    rows = []
    for name, model in models.items():
        predicted = predict_logits(model, images, ctx.dataset).argmax(1).cpu()
        pearson = cam_pearson(cams[name], cams["original"])
        iou = top_fraction_iou(cams[name], cams["original"], 0.2)
        for i, image_id in enumerate(ids.tolist()):
            rows.append({"image_id": image_id, "model": name, "label": int(labels[i]),
                         "predicted": int(predicted[i]), "correct": bool(predicted[i] == labels[i].cpu()),
                         "cam_pearson_to_original": round(float(pearson[i]), 4),
                         "cam_top20_iou_to_original": round(float(iou[i]), 4)})
        print(f"{name}: mean Pearson to original {pearson.mean():.3f}, mean top-20% IoU {iou.mean():.3f}")
    out = ctx.results_dir(TASK)
    write_results(rows, out / "gradcam_pruning.csv",
                  ctx.provenance(cam_layer="stages[3] (4x4)", target="true class", image_seed=ctx.seed))
    plot_cam_grid(images, cams, [f"#{i} y={int(y)}" for i, y in zip(ids.tolist(), labels)],
                  out / "gradcam_pruning.png")


if __name__ == "__main__":
    main()
