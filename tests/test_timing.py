"""The one timing protocol and the int8 kernel check: interleaved rounds, one session, real kernels counted."""

import os
import subprocess
import sys
import time

import pytest
from pathlib import Path

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


@pytest.mark.parametrize("vnni", [False, True])
def test_a_real_int8_row_names_the_reduced_activation_range_on_a_cpu_without_vnni(monkeypatch, small_vgg, example,
                                                                                   vnni):
    """Every real int8 row (PTQ, mixed precision, pipelines, Pareto) takes its kernel column from
    compile_int8's runner: without VNNI its activations are on 0..127, and the row says so."""
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    runner = compile_int8(quantize_int8_pt2e(small_vgg, example, [example]))
    runner(example)
    kernel = Timed(runner, example).kernel_columns()["kernel"]
    assert kernel.startswith("int8 oneDNN") and ("7-bit activations (no VNNI)" in kernel) == (not vnni)


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


class Busy(nn.Module):
    """Sleeps a little per call, so the session lasts long enough to see other processes."""

    def forward(self, x):
        time.sleep(0.05)
        return x


def test_a_session_records_the_load_and_warns_when_others_share_the_cores(capsys):
    """The bug: latencies were committed that had been timed while other jobs shared the cores,
    and nothing in the rows said so."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        rows = time_interleaved({"a": Timed(Busy(), torch.zeros(1))}, "busy", warmup=1, rounds=20)
    finally:
        for p in spinners:
            p.kill()
    row = rows["a"]
    assert row["other_cpu_fraction"] > 0.5 and row["load_avg_before"] != "" and row["own_cpu_per_wall"] < 0.5
    assert "warning: other processes used" in capsys.readouterr().out


def test_the_saved_int8_program_is_the_scored_model(tmp_path):
    """The bug: the PT2E row's size was a file of this study's own int8 format made from the
    unfolded float weights, not the converted model that was scored. Now the converted program is
    the file: read back, it gives identical logits, holds int8 weights only (the float weights
    it no longer reads are dropped) and still lowers to int8 kernels."""
    from common.measure import saved_size_bytes
    from quantization.pt2e import load_int8_program, save_int8_program

    torch.manual_seed(0)
    model = build_model("vgg11", 10, 0.5).eval()
    x = torch.randn(8, 3, 32, 32)
    converted = quantize_int8_pt2e(model, x, [torch.randn(16, 3, 32, 32) for _ in range(2)])
    size = save_int8_program(converted, x, tmp_path / "int8.pt2")
    assert size == (tmp_path / "int8.pt2").stat().st_size and not list(tmp_path.glob("*.tmp"))
    loaded = load_int8_program(tmp_path / "int8.pt2")
    with torch.no_grad():
        assert torch.equal(loaded(x), converted(x))
    fp32 = saved_size_bytes(model.state_dict(), tmp_path / "fp32.pt")
    assert size < 0.4 * fp32        # int8 codes: about a quarter of the fp32 file, plus the graph
    runner = compile_int8(loaded)
    runner(x)
    assert runner.int8_kernels() == 10
    # the file names no path of the checkout (stack traces did: its size depended on where the repo lives)
    assert str(Path(__file__).resolve().parents[1]).encode() not in (tmp_path / "int8.pt2").read_bytes()


@pytest.mark.parametrize("children", [False, True])
def test_a_finished_child_counts_as_own_cpu_only_when_asked(children):
    """The runner judges a stage's machine busy by the CPU of processes *other than* the stage it
    ran as a child: with ``children`` the stage's CPU is its own, without it, someone else's."""
    from common.machine_load import MachineLoad
    from study.status import busy_note

    load = MachineLoad(children=children).start()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass"
    workers = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 1)]
    assert all(w.wait() == 0 for w in workers)
    load.stop()
    assert load.busy is not children and (busy_note(load) == "") is children


def test_a_stage_is_timed_by_the_clock_that_judged_its_load():
    """The runner's stage seconds and the busy share come from one clock (``MachineLoad.seconds``):
    the elapsed wall seconds while the block runs, then the block's own, which no later wait moves."""
    from common.machine_load import MachineLoad

    load = MachineLoad().start()
    time.sleep(0.2)
    assert 0.15 < load.seconds < 1.0
    load.stop()
    measured = load.seconds
    time.sleep(0.2)
    assert load.seconds == measured and 0.15 < measured < 1.0
