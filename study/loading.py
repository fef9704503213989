"""Any model the study saved, back in two lines, ready for evaluation (a notebook's entry point).

    from study.loading import load_model
    model = load_model("checkpoints/cifar100-cpu/vgg11_unstructured70_seed0.pt")

A baseline, a pruned model (unstructured: dense with zeros; channel-pruned: smaller), a student or
the colour teacher is a ``.pt`` checkpoint (``common.checkpoints``); the PT2E int8 model is a
``.pt2`` program (``quantization.pt2e``). No stage imports this module, so what it imports (torchao,
for a program) is no part of any stage's code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from common.checkpoints import load_checkpoint
from common.errors import UserError


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Any model the study saved, in eval mode, ready for evaluation: a ``.pt`` checkpoint of
    ``save_checkpoint`` (baseline, pruned dense or channel-pruned, student, colour teacher) on
    ``device``, or a ``.pt2`` int8 program (``quantization.pt2e.load_int8_program``; its x86
    kernels run on the CPU only, so another ``device`` is refused with UserError).

    The model takes normalised images [B,3,32,32] float32 (``common.augment.BatchTransform(dataset)``
    of uint8 images) and returns logits [B,classes]; ``load_checkpoint`` also returns the metadata.
    """
    path = Path(path)
    if path.suffix == ".pt2":
        if torch.device(device).type != "cpu":
            raise UserError(f"{path} is an int8 program for the CPU's x86 kernels; load it with device='cpu'")
        if not path.is_file():
            raise FileNotFoundError(f"no int8 program at {path}")
        from quantization.pt2e import load_int8_program   # torchao: only when a program is asked for

        return load_int8_program(path)
    model, _ = load_checkpoint(path, map_location=device)
    return model.to(device).eval()
