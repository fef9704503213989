"""The one timing protocol and the int8 kernel check: interleaved rounds, one session, real kernels counted."""

import pytest
import torch
from torch import nn

from common.models import build_model
from common.timing import InferenceCompiled, Timed, new_session_id, same_session, time_interleaved
from quantization.pt2e import compile_int8, quantize_int8_pt2e


@pytest.fixture(scope="module")
def small_vgg():
    torch.manual_seed(0)
    return build_model("vgg11", 10, 0.125).eval()


@pytest.fixture(scope="module")
def example():
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def int8_graph(small_vgg, example):
    return quantize_int8_pt2e(small_vgg, example, [example])


def test_compiled_pt2e_int8_reports_its_int8_kernels(small_vgg, int8_graph, example):
    runner = compile_int8(int8_graph)
    assert runner.int8_kernels() == 0                      # nothing compiled yet: not real
    out = runner(example)
    convs = len(small_vgg.convs())
    linears = sum(isinstance(m, nn.Linear) for m in small_vgg.modules())
    assert runner.compilations[0] == {"int8_conv_kernels": convs, "int8_linear_kernels": linears}
    assert runner.int8_kernels() == convs + linears
    assert "int8" in runner.kernel_summary()
    # the int8 kernels compute what the quantize/dequantize reference graph computes
    reference = int8_graph(example)
    assert (out.argmax(1) == reference.argmax(1)).float().mean() >= 0.75
    assert torch.allclose(out, reference, atol=0.1 * reference.abs().max().item())


def test_compiling_without_freezing_runs_no_int8_kernel(int8_graph, example):
    """What the study did before: plain torch.compile leaves the graph on float kernels."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    with torch.inference_mode():
        torch.compile(int8_graph)(example)
    assert counters["inductor"]["qconv_weight_prepack_matcher_count"] == 0


def test_keep_float_layers_stay_fp32(small_vgg, example):
    names = [n for n, m in small_vgg.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    graph = quantize_int8_pt2e(small_vgg, example, [example], keep_float=(names[0], names[-1]))
    runner = compile_int8(graph)
    runner(example)
    assert runner.int8_kernels() == len(names) - 2


def test_float_models_compile_without_int8_kernels(small_vgg, example):
    runner = InferenceCompiled(small_vgg)
    assert torch.allclose(runner(example), small_vgg(example), atol=1e-4)
    assert runner.int8_kernels() == 0 and "float" in runner.kernel_summary()


class Sleeper(nn.Module):
    """Counts its calls; the order of calls shows the rounds' rotation."""

    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x):
        self.log.append(self.name)
        return x


def test_models_are_timed_in_turns_in_one_session():
    log = []
    x = torch.zeros(4, 3)
    models = {n: Timed(Sleeper(n, log), x, f"{n} kernel") for n in "abc"}
    session = new_session_id("test")
    rows = time_interleaved(models, session, warmup=2, rounds=3)
    # warm-up: each model twice, then one call per model per round, the order rotated each round
    assert log == list("aabbcc") + list("abc") + list("bca") + list("cab")
    for name, row in rows.items():
        assert row["timing_session"] == f"{session}-cpu" and row["latency_rounds"] == 3   # one session per device
        assert row["latency_batch"] == 4 and row["latency_device"] == "cpu" and row["input_dtype"] == "float32"
        assert row["kernel"] == f"{name} kernel" and row["threads"] == torch.get_num_threads()
        assert 0 <= row["latency_p10_ms"] <= row["latency_ms"] <= row["latency_p90_ms"]
    assert same_session(list(rows.values()))
    assert not same_session([{"latency_ms": 1, "timing_session": "a"}, {"latency_ms": 2, "timing_session": "b"}])


def test_timing_needs_a_warm_up_and_rounds():
    with pytest.raises(ValueError):
        time_interleaved({"a": Timed(nn.Identity(), torch.zeros(1))}, "s", warmup=0)
