"""Grad-CAM maps of CIFAR VGGs (pytorch-grad-cam) and measures of agreement between two maps."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from common.augment import BatchTransform
from common.models import VGG
from common.training import predict_logits


def default_cam_layer(model: VGG) -> nn.Module:
    """The fourth stage (4x4 maps at 32x32 input): the deepest stage finer than 2x2."""
    return model.stages[-2]


def gradcam_maps(model: VGG, images: torch.Tensor, dataset: str, classes: torch.Tensor,
                 layer: nn.Module | None = None) -> np.ndarray:
    """Grad-CAM of ``classes`` for uint8 images [N,3,32,32]: float maps [N,32,32] in [0,1].

    Each map is upsampled to the input size and scaled to [0,1] by pytorch-grad-cam.
    """
    model = model.eval()
    x = BatchTransform(dataset, channels_last=False)(images).requires_grad_(False)
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    with GradCAM(model=model, target_layers=[layer or default_cam_layer(model)]) as cam:
        return cam(input_tensor=x, targets=targets)


def cam_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image Pearson correlation of two map stacks [N,H,W] -> [N] (0 where a map is flat)."""
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(denom > 0, (a * b).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def top_fraction_iou(a: np.ndarray, b: np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """Per-image IoU of the top-``fraction`` pixels of each map; [N,H,W] x2 -> [N]."""
    def top(m):
        flat = m.reshape(len(m), -1)
        k = max(1, int(round(fraction * flat.shape[1])))
        idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
        mask = np.zeros_like(flat, dtype=bool)
        np.put_along_axis(mask, idx, True, axis=1)
        return mask

    ma, mb = top(a), top(b)
    return (ma & mb).sum(1) / (ma | mb).sum(1)


def seeded_images(images: torch.Tensor, labels: torch.Tensor, count: int, seed: int
                  ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """A fixed, seeded choice of ``count`` images: (indices, uint8 images [n,3,32,32], labels [n])."""
    ids = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
    return ids.tolist(), images[ids.to(images.device)], labels[ids.to(labels.device)]


def compare_cams(models: dict[str, VGG], reference: str, ids: list[int], images: torch.Tensor,
                 labels: torch.Tensor, dataset: str) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Grad-CAM of every model for each image's true class, compared with ``models[reference]``.

    Returns rows (image_id, model, label, predicted, correct, cam_pearson_to_<reference>,
    cam_top20_iou_to_<reference>) and the maps by model ([n,32,32] each).
    """
    cams = {name: gradcam_maps(m, images, dataset, labels) for name, m in models.items()}
    rows = []
    for name, model in models.items():
        predicted = predict_logits(model, images, dataset).argmax(1).cpu()
        pearson = cam_pearson(cams[name], cams[reference])
        iou = top_fraction_iou(cams[name], cams[reference], 0.2)
        for i, image_id in enumerate(ids):
            rows.append({"image_id": image_id, "model": name, "label": int(labels[i]),
                         "predicted": int(predicted[i]), "correct": bool(predicted[i] == labels[i].cpu()),
                         f"cam_pearson_to_{reference}": round(float(pearson[i]), 4),
                         f"cam_top20_iou_to_{reference}": round(float(iou[i]), 4)})
        print(f"[gradcam] {name}: mean Pearson to {reference} {pearson.mean():.3f}, "
              f"mean top-20% IoU {iou.mean():.3f}")
    return rows, cams
