"""Real int8 post-training quantization through torchao's PT2E flow (x86 / oneDNN backend).

``torch.export`` captures the model, ``prepare_pt2e`` with the X86InductorQuantizer inserts
observers for static int8 activations and per-channel int8 weights of every conv and linear,
calibration batches set the ranges, and ``convert_pt2e`` gives a quantized graph module. Under
``torch.compile`` Inductor lowers it to int8 oneDNN kernels (real low-precision compute, not a
simulation); run eagerly it executes quantize/dequantize reference ops.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torchao.quantization.pt2e import allow_exported_model_train_eval
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86


@torch.no_grad()
def quantize_int8_pt2e(model: nn.Module, example: torch.Tensor,
                       calibration: Iterable[torch.Tensor]) -> torch.fx.GraphModule:
    """Static int8 PTQ of ``model`` (eval mode) via PT2E.

    ``example`` [B,3,H,W] fixes the exported graph's input; ``calibration`` yields normalised
    input batches (train or validation images only) that set the activation ranges.
    """
    exported = torch.export.export(model.eval(), (example,)).module()
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)
    for batch in calibration:
        prepared(batch)
    # Exported modules refuse .train()/.eval() by default; the study's helpers call .eval().
    return allow_exported_model_train_eval(convert_pt2e(prepared))
