"""The libraries' warnings this study knows to be harmless, silenced one by one at their source.

Each entry names the message, the module that raises it and why it says nothing about the study's
numbers; every other warning is still shown. ``install`` is called by every script (through its
parser, ``common.flags.Parser``) and by every pool worker (``common.jobs``), before the libraries
are used; it imports none of them.
"""

from __future__ import annotations

import logging
import warnings

# (message regex, module regex, why it is harmless): Python warnings
KNOWN_WARNINGS = (
    (r"To copy construct from a tensor", r"torch\._inductor\.mkldnn_lowerings",
     "torch.compile's CPU lowering copies a constant weight tensor; the compiled program is unaffected"),
    (r"The input of maxpool2d is not quantized", r"torchao\.quantization\.pt2e\.quantizer\.x86_inductor_quantizer",
     "PT2E leaves the max-pools after a float layer in float, as intended (the int8 layers are the convs)"),
    (r"No complete tensor found in the group", r"torch\.export\.pt2_archive",
     "loading a saved .pt2 program on the CPU: its weights are on the CPU, where the warning does not apply"),
)

# (logger name, message start, why it is harmless): messages of the logging module
KNOWN_LOG_MESSAGES = (
    ("torch.utils.cpp_extension", "No CUDA runtime is found",
     "torch looks for a CUDA toolkit when torch.compile is imported; the study compiles no CUDA extension"),
)


class _DropKnown(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def install() -> None:
    """Silence exactly the warnings of ``KNOWN_WARNINGS`` and ``KNOWN_LOG_MESSAGES`` (idempotent)."""
    for message, module, _ in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, module=module)
    for name, start, _ in KNOWN_LOG_MESSAGES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropKnown) and f.start == start for f in logger.filters):
            logger.addFilter(_DropKnown(start))
