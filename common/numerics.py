"""What a run's floating point means, and how deterministic it is, set once per process.

- **fp32 is IEEE fp32.** On CUDA, PyTorch lets cuDNN convolutions use TF32 by default (10-bit
  mantissa inputs), so an "fp32" evaluation or latency would really be TF32. ``set_numerics``
  turns TF32 off for cuDNN convolutions and cuBLAS matmuls; training is unaffected
  in what it means, since it runs under bf16 autocast where the device has fast bf16. (The
  legacy ``allow_tf32`` flags are the ones set: ``torch.export`` saves and restores cuDNN's
  flags through them, and refuses a mix of those and the newer ``fp32_precision`` API.)
- **Determinism.** On a CPU, a training is bit-reproducible for the same code, seed, thread count
  and kind of CPU. On CUDA, by default it is not: cuDNN may pick algorithms whose backward passes
  accumulate with atomics (weight gradients of convolutions), and float atomics add in whatever
  order the threads arrive. cuDNN autotuning (``torch.backends.cudnn.benchmark``) is off in this
  study, so the algorithm choice itself is fixed. ``deterministic=True`` (``--deterministic``)
  asks cuDNN and PyTorch for deterministic kernels only (``torch.use_deterministic_algorithms``
  with a warning, not an error, for an op that has none; cuBLAS gets the fixed workspace it needs),
  at some cost in speed.
"""

from __future__ import annotations

import os

import torch

CUBLAS_WORKSPACE = ":4096:8"   # what cuBLAS needs for reproducible results (CUDA docs)


def set_numerics(deterministic: bool = False) -> dict:
    """Set this process's fp32 precision (IEEE, TF32 off) and determinism; returns the settings
    as provenance columns (``fp32_precision``, ``deterministic``, ``cudnn_benchmark``). Call it
    before the first CUDA kernel (``RunContext.from_args`` does)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    return numerics_settings()


def numerics_settings() -> dict:
    """The precision and determinism settings in force (for provenance)."""
    tf32 = torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
    return {"fp32_precision": "tf32 allowed" if tf32 else "ieee (TF32 off)",
            "deterministic": bool(torch.are_deterministic_algorithms_enabled()),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
