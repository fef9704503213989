"""Every tensor a library function makes lives on its input's device.

There is no GPU here, so the helpers run on the *meta* device: a tensor made on the CPU inside a
function collides with a meta input exactly as it would with a CUDA one ("Tensor on device cpu is
not on the expected device meta"), and nothing is computed, so these tests are instant.
"""

import pytest
import torch

from common.augment import BatchTransform
from common.models import build_model
from distillation.methods import METHODS, build_distiller
from pruning.methods import pack_bitmask, unpack_bitmask
from quantization.quantizers import QuantSpec, pack_codes, quantize_dequantize, unpack_codes

META = torch.device("meta")


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_code_packing_stays_on_the_input_device(bits):
    packed = pack_codes(torch.zeros(13, dtype=torch.int8, device=META), bits)
    assert packed.device == META and packed.dtype == torch.uint8
    assert unpack_codes(packed, bits, 13, signed=True).device == META


def test_bitmask_packing_stays_on_the_input_device():
    packed = pack_bitmask(torch.zeros(19, dtype=torch.bool, device=META))
    assert packed.device == META and unpack_bitmask(packed, 19).device == META


@pytest.mark.parametrize("spec", [QuantSpec(4), QuantSpec(3, 16), QuantSpec(4, clip_percentile=99.0),
                                  QuantSpec(3, dtype="nf"), QuantSpec(3, dtype="pow2"),
                                  QuantSpec(16, dtype="bfloat16")], ids=lambda s: s.label)
def test_weight_quantizers_stay_on_the_input_device(spec):
    assert quantize_dequantize(torch.empty(8, 4, 3, 3, device=META), spec).device == META


@pytest.mark.parametrize("method", sorted(METHODS))
def test_distillers_stay_on_the_input_device(method):
    torch.manual_seed(0)
    student, teacher = build_model("vgg11", 10, 0.125), build_model("vgg16", 10, 0.25)
    extra = {"train_size": 64} if method == "crd" else {}
    distiller = build_distiller(method, student, teacher if METHODS[method].needs_teacher else None, 10, **extra)
    distiller = distiller.to(META).train()
    x, y = torch.empty(4, 3, 32, 32, device=META), torch.zeros(4, dtype=torch.long, device=META)
    logits, loss, _ = distiller(x, y)
    assert logits.device == META and loss.device == META


def test_batch_augmentation_stays_on_the_input_device():
    out = BatchTransform("cifar10", augment=True, jitter=True)(torch.empty(4, 3, 32, 32, dtype=torch.uint8, device=META))
    assert out.device == META
