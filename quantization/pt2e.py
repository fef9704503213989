"""Real int8 quantization through torchao's PT2E flow (x86 / oneDNN backend): PTQ and QAT.

``torch.export`` captures the model (batch dimension dynamic); the X86InductorQuantizer
annotates static int8 activations and per-channel int8 weights of every conv and linear (on a CPU
without VNNI, activations keep a 7-bit range: ``activation_range_reduced``).
PTQ: ``prepare_pt2e`` inserts observers, calibration batches set the ranges, ``convert_pt2e``
gives the quantized graph. QAT: ``prepare_qat_pt2e`` inserts fake-quantizers (BatchNorm folded
into the conv during training), the graph trains like any module, then ``convert_pt2e``.
Layers named in ``keep_float`` get no quantization config (the X86 quantizer's per-module
configuration): they stay fp32 while the rest runs int8.

Only ``compile_int8`` (``torch.compile`` with Inductor freezing on, see ``common.timing``) lowers a
converted graph to int8 oneDNN kernels, and it counts them; run eagerly, or compiled without
freezing, the graph executes fp32 convolutions between quantize/dequantize ops.

The int8 file is the scored model: ``save_int8_program`` writes the converted graph as a
``torch.export`` program (its int8 weight codes, scales and zero points; the float weights the
graph no longer reads are dropped first) and ``load_int8_program`` reads it back; the study
evaluates and times the model loaded from that file, and reports that file's bytes.

The PT2E x86 backend exists only on the CPU. ``quantize_int8_pt2e`` and ``convert_int8`` work on
CPU copies and always return a CPU graph, whatever device the float model and the calibration
batches are on (a GPU run evaluates and times its int8 rows on the CPU, and says so); QAT itself
(``prepare_int8_qat``) trains on the model's own device, since fake-quantization runs anywhere.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterable

import torch
from torch import nn
from torchao.quantization.pt2e import allow_exported_model_train_eval
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

from common.measure import file_size_bytes
from common.numerics import machine_kind
from common.results import atomic_path
from common.timing import InferenceCompiled
from common.training import module_device

CPU = torch.device("cpu")

MAX_BATCH = 4096


def _export(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    batch = torch.export.Dim("batch", min=2, max=MAX_BATCH)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()


def activation_range_reduced() -> bool:
    """True on a CPU without VNNI. There oneDNN's int8 convolutions multiply u8 activations by s8
    weights with ``vpmaddubsw``, which adds pairs of products in saturating int16: activations on
    the full 0..255 grid overflow it, and the compiled model loses accuracy its graph keeps run
    eagerly. torchao's x86 quantizer asks for ``reduce_range`` (activations on 0..127) on such
    CPUs. It reads VNNI from the machine facts every sidecar records (``machine_kind``)."""
    return not machine_kind("cpu")["vnni"]


def activation_grid() -> str:
    """How the PT2E int8 model quantizes activations on this CPU, for a results row."""
    return "int8 per-tensor, 7-bit range (no VNNI)" if activation_range_reduced() else "int8 per-tensor"


def activation_range_note() -> str:
    """What a real int8 row adds to its kernel or measurement column on this CPU: '7-bit
    activations (no VNNI)' where ``activation_range_reduced()``, else ''."""
    return "7-bit activations (no VNNI)" if activation_range_reduced() else ""


class Int8Compiled(InferenceCompiled):
    """``compile_int8``'s runner: an ``InferenceCompiled`` whose ``kernel_summary()``, once int8
    kernels ran, ends with the activation range its graph was quantized to (``note``)."""

    def __init__(self, graph: torch.nn.Module, note: str):
        super().__init__(graph)
        self.note = note

    def kernel_summary(self) -> str:
        summary = super().kernel_summary()
        return f"{summary}; {self.note}" if self.note and self.int8_kernels() > 0 else summary


def _quantizer(is_qat: bool, keep_float: Iterable[str] = ()) -> x86.X86InductorQuantizer:
    config = x86.get_default_x86_inductor_quantization_config(is_qat=is_qat, reduce_range=activation_range_reduced())
    quantizer = x86.X86InductorQuantizer().set_global(config)
    for name in keep_float:
        quantizer.set_module_name_qconfig(name, None)
    return quantizer


@torch.no_grad()
def quantize_int8_pt2e(model: nn.Module, example: torch.Tensor,
                       calibration: Iterable[torch.Tensor], keep_float: Iterable[str] = ()
                       ) -> torch.fx.GraphModule:
    """Static int8 PTQ of a CPU copy of ``model`` via PT2E; returns the converted graph, on the CPU.

    ``example`` [B,3,H,W] (B >= 2, any device) traces the graph; ``calibration`` yields normalised
    input batches (train or validation images only, any device) that set the activation ranges;
    the layers named in ``keep_float`` (module names, e.g. the first conv) stay fp32. ``model``
    itself is left as it was.
    """
    model = copy.deepcopy(model).to(CPU).eval()
    prepared = prepare_pt2e(_export(model, example.to(CPU)), _quantizer(False, keep_float))
    for batch in calibration:
        prepared(batch.to(CPU))
    # Exported modules refuse .train()/.eval() by default; the study's helpers call .eval().
    return allow_exported_model_train_eval(convert_pt2e(prepared))


def prepare_int8_qat(model: nn.Module, example: torch.Tensor) -> torch.fx.GraphModule:
    """``model`` as a trainable PT2E graph with int8 fake-quantizers (weights per channel,
    activations per tensor), on ``model``'s device (``example`` [B,3,H,W] on it too);
    ``.train()``/``.eval()`` switch BatchNorm and observers correctly."""
    prepared = prepare_qat_pt2e(_export(model.train(), example), _quantizer(is_qat=True))
    return allow_exported_model_train_eval(prepared)


def rebuild_on_cpu(prepared: torch.fx.GraphModule, model: nn.Module, example: torch.Tensor
                   ) -> torch.fx.GraphModule:
    """A CPU ``prepare_int8_qat`` graph holding ``prepared``'s trained state (weights, BatchNorm
    statistics, fake-quantizer ranges): re-exported on the CPU from ``model``, the float model
    ``prepared`` was made from (only its architecture matters), rather than moving a graph
    exported on another device."""
    cpu = prepare_int8_qat(copy.deepcopy(model).to(CPU), example.to(CPU))
    cpu.load_state_dict({k: v.to(CPU) for k, v in prepared.state_dict().items()})
    return cpu


def convert_int8(prepared: torch.fx.GraphModule, model: nn.Module, example: torch.Tensor
                 ) -> torch.fx.GraphModule:
    """The int8 model (eval mode, on the CPU) of a trained ``prepare_int8_qat`` graph; a graph
    trained on another device is first rebuilt on the CPU (``rebuild_on_cpu``) from ``model``
    and ``example``, the float model and batch it was prepared with."""
    if module_device(prepared) != CPU:
        prepared = rebuild_on_cpu(prepared, model, example)
    prepared.eval()
    return allow_exported_model_train_eval(convert_pt2e(prepared))


def compile_int8(graph: torch.nn.Module) -> Int8Compiled:
    """A converted PT2E graph (or a program read back) compiled for inference with freezing on,
    so that Inductor lowers it to int8 oneDNN kernels; after its first call, ``int8_kernels()``
    says how many it lowered (0: it runs float kernels and a row measured with it is not a real
    int8 number), and ``kernel_summary()`` names the activation range of this CPU."""
    return Int8Compiled(graph, activation_range_note())


def drop_unread_tensors(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``graph`` without the parameters and buffers none of its nodes reads (after
    ``convert_pt2e`` the float weights stay attached beside the int8 codes that replaced them)."""
    read = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    for name, _ in [*graph.named_parameters(), *graph.named_buffers()]:
        if name not in read:
            owner, _, leaf = name.rpartition(".")
            delattr(graph.get_submodule(owner) if owner else graph, leaf)
    return graph


def save_int8_program(graph: torch.fx.GraphModule, example: torch.Tensor, path) -> int:
    """Write the converted int8 ``graph`` (CPU) as a ``torch.export`` program to ``path``
    (atomically; batch dimension dynamic, ``example`` [B,3,H,W] traces it) and return the
    file's bytes: int8 weight codes, their scales and zero points, activation ranges, the graph
    (no example input, and no stack traces: they name the files of the checkout that traced it,
    so the bytes would depend on where the repository lives)."""
    graph = drop_unread_tensors(copy.deepcopy(graph))
    batch = torch.export.Dim("batch", min=2, max=MAX_BATCH)
    program = torch.export.export(graph, (example[:2].to(CPU),), dynamic_shapes=({0: batch},))
    program.example_inputs = None    # a deployed model carries no sample batch
    for node in program.graph.nodes:
        node.meta.pop("stack_trace", None)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return file_size_bytes(path)


def load_int8_program(path) -> torch.fx.GraphModule:
    """The int8 model stored by ``save_int8_program`` (eval mode, on the CPU)."""
    module = allow_exported_model_train_eval(torch.export.load(path).module())
    module.eval()
    return module


def int8_program(model: nn.Module, calibration: list[torch.Tensor], path, keep_float: Iterable[str] = ()
                 ) -> tuple[torch.fx.GraphModule, int]:
    """Static int8 PTQ of ``model`` (``quantize_int8_pt2e``), saved to ``path`` as its program and
    read back: (the model loaded from the file, on the CPU; the file's bytes). What a row reports
    of this model -- size, accuracy, latency -- then describes the file."""
    size = save_int8_program(quantize_int8_pt2e(model, calibration[0], calibration, keep_float),
                             calibration[0], path)
    return load_int8_program(path), size
