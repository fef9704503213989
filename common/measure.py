"""Measurements with the honesty rules built in: latency (warm-up then median) and real file sizes."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from common.results import atomic_path


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def measure_latency(model: nn.Module, example: torch.Tensor, warmup: int = 10,
                    repeats: int = 50) -> dict:
    """Time ``model(example)``: ``warmup`` untimed calls, then the median of ``repeats`` calls.

    ``example`` [B,3,H,W] must already be on the model's device and in its dtype/layout.
    Returns latency_ms (median), latency_p10_ms, latency_p90_ms, batch_size, device, threads, dtype.
    """
    model.eval()
    device = example.device
    for _ in range(warmup):
        model(example)
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(example)
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    deciles = statistics.quantiles(times, n=10)
    return {"latency_ms": statistics.median(times), "latency_p10_ms": deciles[0],
            "latency_p90_ms": deciles[-1], "batch_size": example.shape[0], "device": device.type,
            "threads": torch.get_num_threads(), "dtype": str(example.dtype).replace("torch.", "")}


def file_size_bytes(path: str | os.PathLike) -> int:
    """Size of a real file on disk, in bytes."""
    return os.path.getsize(path)


def saved_size_bytes(obj, path: str | os.PathLike) -> int:
    """``torch.save(obj)`` to ``path`` (atomically) and return the file's size in bytes."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return file_size_bytes(Path(path))
