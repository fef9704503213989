"""What a model costs, measured on the model itself: real file sizes (bytes of files written to
disk) and multiply-accumulates per image (counted by running it). Latency lives in
``common.timing``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from common.results import atomic_path


def file_size_bytes(path: str | os.PathLike) -> int:
    """Size of a real file on disk, in bytes."""
    return os.path.getsize(path)


def saved_size_bytes(obj, path: str | os.PathLike) -> int:
    """``torch.save(obj)`` to ``path`` (atomically) and return the file's size in bytes."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return file_size_bytes(Path(path))


def count_macs(model: torch.nn.Module, image_size: int = 32) -> int:
    """Multiply-accumulates of one forward pass of one image [1,3,image_size,image_size], counted
    by running ``model`` (eval mode, no grad, on its parameters' device; the CPU for a parameterless
    program) under ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products,
    whose FLOPs it counts as 2 per multiply-accumulate (BatchNorm, ReLU and pooling are not
    counted). A channel-pruned model counts its smaller layers; an unstructured-pruned one counts
    its zeros, as the dense kernels compute them."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() // 2
