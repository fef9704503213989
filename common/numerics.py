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
- **The kind of machine.** Trainings run under bf16 autocast where the device has fast bf16 (a
  GPU with bf16, a CPU with AVX512-BF16 or AMX) and in fp32 elsewhere, so two kinds of CPU train
  different models from the same code and seed. ``machine_kind`` names what decides this; every
  sidecar, checkpoint and completion record carries it.
"""

from __future__ import annotations

import os
import platform

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


def fast_bf16_available(device: torch.device | str) -> bool:
    """True where bf16 matmul/conv run natively (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_kind(device: torch.device | str) -> dict:
    """What kind of machine decides the numbers of a run on ``device``: the CPU model, its
    instruction set as torch uses it (``get_cpu_capability``: AVX2, AVX512...), whether it has
    AVX512-BF16 and AMX, whether it has VNNI (without it, PT2E int8 quantizes activations to a
    7-bit range: ``quantization.pt2e.activation_range_reduced``), the dtype trainings run in
    (``training_dtype``: bf16 or fp32), and on CUDA the GPU's name and compute capability."""
    device = torch.device(device)
    kind = {"cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
            "amx": bool(torch.cpu._is_amx_tile_supported()),
            "vnni": bool(torch.cpu._is_vnni_supported()),
            "training_dtype": "bf16" if fast_bf16_available(device) else "fp32"}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        kind.update(gpu=torch.cuda.get_device_name(device), gpu_capability=f"{major}.{minor}")
    return kind
