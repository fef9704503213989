"""Quantization study (VGG-11): PTQ/QAT at fp16/bf16/int8/int4, k-bit scaling, mixed precision, outliers."""
