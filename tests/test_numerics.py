"""fp32 means IEEE fp32 (no TF32 on CUDA), and --deterministic asks for deterministic kernels."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import argparse, json, sys, torch
from common.cli import RunContext
from common.flags import add_common_args
args = add_common_args(argparse.ArgumentParser()).parse_args(sys.argv[1:])
ctx = RunContext.from_args(args)
print(json.dumps({"conv_tf32": torch.backends.cudnn.allow_tf32,
                  "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
                  "deterministic": torch.are_deterministic_algorithms_enabled(),
                  "ctx": ctx.deterministic, "numerics": ctx.provenance()["numerics"]}))
"""


def probe(cifar_root, *flags) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, "--profile", "smoke", "--dataset", "cifar10",
                          "--data-dir", str(cifar_root), *flags],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_every_run_computes_fp32_as_ieee_fp32(cifar_root):
    """torch's default lets cuDNN convolutions run TF32 (the bug: GPU 'fp32' rows were TF32)."""
    got = probe(cifar_root)
    assert got["conv_tf32"] is False and got["matmul_tf32"] is False
    assert got["deterministic"] is False and got["numerics"]["fp32_precision"] == "ieee (TF32 off)"


def test_deterministic_switch(cifar_root):
    got = probe(cifar_root, "--deterministic")
    assert got["deterministic"] is True and got["ctx"] is True and got["numerics"]["deterministic"] is True
