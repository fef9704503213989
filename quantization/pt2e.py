"""Real int8 quantization through torchao's PT2E flow (x86 / oneDNN backend): PTQ and QAT.

``torch.export`` captures the model (batch dimension dynamic); the X86InductorQuantizer
annotates static int8 activations and per-channel int8 weights of every conv and linear.
PTQ: ``prepare_pt2e`` inserts observers, calibration batches set the ranges, ``convert_pt2e``
gives the quantized graph. QAT: ``prepare_qat_pt2e`` inserts fake-quantizers (BatchNorm folded
into the conv during training), the graph trains like any module, then ``convert_pt2e``. Under
``torch.compile`` Inductor lowers the converted graph to int8 oneDNN kernels (real
low-precision compute); run eagerly it executes the equivalent quantize/dequantize reference ops.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torchao.quantization.pt2e import allow_exported_model_train_eval
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

MAX_BATCH = 4096


def _export(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    batch = torch.export.Dim("batch", min=2, max=MAX_BATCH)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()


def _quantizer(is_qat: bool) -> x86.X86InductorQuantizer:
    config = x86.get_default_x86_inductor_quantization_config(is_qat=is_qat)
    return x86.X86InductorQuantizer().set_global(config)


@torch.no_grad()
def quantize_int8_pt2e(model: nn.Module, example: torch.Tensor,
                       calibration: Iterable[torch.Tensor]) -> torch.fx.GraphModule:
    """Static int8 PTQ of ``model`` (eval mode) via PT2E.

    ``example`` [B,3,H,W] (B >= 2) traces the graph; ``calibration`` yields normalised input
    batches (train or validation images only) that set the activation ranges.
    """
    prepared = prepare_pt2e(_export(model.eval(), example), _quantizer(is_qat=False))
    for batch in calibration:
        prepared(batch)
    # Exported modules refuse .train()/.eval() by default; the study's helpers call .eval().
    return allow_exported_model_train_eval(convert_pt2e(prepared))


def prepare_int8_qat(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """``model`` as a trainable PT2E graph with int8 fake-quantizers (weights per channel,
    activations per tensor); ``.train()``/``.eval()`` switch BatchNorm and observers correctly."""
    prepared = prepare_qat_pt2e(_export(model.train(), example), _quantizer(is_qat=True))
    return allow_exported_model_train_eval(prepared)


def convert_int8(prepared: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """The int8 model of a trained ``prepare_int8_qat`` graph (eval mode)."""
    prepared.eval()
    return allow_exported_model_train_eval(convert_pt2e(prepared))
