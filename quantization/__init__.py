"""Quantization study (VGG-11): PTQ/QAT at fp16/bf16/int8/int4, k-bit scaling, mixed precision, outliers."""

import logging

# torchao 0.18 registers an Enum with torch's pytree at import; torch 2.14 logs a deprecation
# warning for it on every run, which says nothing to a user of this study.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
