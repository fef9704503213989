"""Every quantization script runs on the smoke profile and writes its CSVs, figures and provenance."""

import json

import pytest

from common.results import read_rows
from quantization.formats import converted
from quantization.outliers import BITS, QUANTIZERS, SCOPES
from quantization.pt2e import activation_grid, activation_range_note
from tests.conftest import SMOKE_RUN


@pytest.fixture(scope="module")
def outputs(cifar_root, tmp_path_factory, smoke_scripts):
    """Run the five scripts once, in order, into one temporary results/checkpoints tree."""
    tmp = smoke_scripts(tmp_path_factory.mktemp("quantization"), cifar_root, "quantization", [
        ("01_ptq", "--rounds", "2"), ("02_qat", "--epochs", "2"),
        ("03_scaling_law", "--models", "vgg11", "vgg16", "--bits", "2", "4", "--qat-bits", "2", "--no-with-pruned"),
        ("04_mixed_precision", "--low-bits", "3", "--hessian-images", "64", "--hutchinson-samples", "4",
         "--rounds", "2"),
        ("05_outliers",)])
    return tmp / "results" / SMOKE_RUN / "quantization"


def quantized_files(outputs):
    """checkpoints/cifar10-smoke/quantized/ of the module's run (outputs is its quantization results folder)."""
    return outputs.parents[2] / "checkpoints" / SMOKE_RUN / "quantized"


def test_ptq_rows_label_every_format_and_measure_real_kernels(outputs):
    rows = read_rows(outputs / "ptq.csv")
    assert [r["format"] for r in rows] == ["fp32", "fp32", "fp16", "bf16", "fp16", "bf16", "int8", "int8", "int4", "int4",
                                           "int4"]
    compiled = {r["scheme"]: r for r in rows if r["scheme"].endswith("(torch.compile)")}
    assert set(compiled) == {"fp32 (torch.compile)", "fp16 cast (torch.compile)", "bf16 cast (torch.compile)"}
    assert all(r["simulated"] == "no" and r["latency_ms"] for r in compiled.values())   # timed beside int8
    for r in rows:
        assert 0 <= float(r["top1_acc"]) <= 100 and int(r["size_bytes"]) > 0
        assert (r["latency_ms"] == "") == (r["simulated"] == "yes")  # only real kernels are timed
    timed = [r for r in rows if r["latency_ms"]]
    assert len({r["timing_session"] for r in timed}) == 1         # all timed together, comparable
    int8 = next(r for r in rows if r["scheme"] == "W8A8 static (torchao PT2E)")
    assert int8["simulated"] == "no" and int(int8["int8_kernels"]) == 10   # 8 convs + 2 linears ran int8
    assert activation_range_note() in int8["kernel"] and int8["activations"] == activation_grid()
    size = {r["scheme"]: int(r["size_bytes"]) for r in rows}
    assert size["W4 weight-only (packed)"] < size["W8A8 (fake-quant check)"] < size["fp16 cast"] < size["fp32 (eager)"]
    # the PT2E row's size is the saved int8 program that was scored (its graph, about 150 kB, outweighs
    # the int8 codes of a smoke-width model, so no order against the other files is asserted here)
    assert size["W8A8 static (torchao PT2E)"] == (quantized_files(outputs) / "int8_pt2e.pt2").stat().st_size
    prov = json.loads((outputs / "ptq.json").read_text())
    assert prov["profile"] == SMOKE_RUN.removeprefix("cifar10-") and "torchao" in prov["versions"]


def test_qat_has_every_format_and_epoch(outputs):
    rows = read_rows(outputs / "qat.csv")
    assert {(r["format"], r["epoch"]) for r in rows} == {(f, str(e)) for f in ("fp32", "fp16", "bf16", "int4", "int8")
                                                        for e in range(3)}
    final_int8 = next(r for r in rows if r["format"] == "int8" and r["epoch"] == "2")
    assert final_int8["measured_on"] == converted("QAT") and final_int8["simulated"] == "no"
    assert final_int8["measured_on"].startswith("converted int8 (PT2E QAT)")
    # the curve is read on validation; test scores only the PTQ model and the final one
    assert all(r["val_top1_acc"] != "" for r in rows)
    assert {(r["format"], r["epoch"]) for r in rows if r["top1_acc"] != ""} == {
        (f, e) for f in ("fp32", "fp16", "bf16", "int4", "int8") for e in ("0", "2")}
    summary = read_rows(outputs / "qat_summary.csv")
    assert len(summary) == 5 and (outputs / "qat_recovery.png").stat().st_size > 0
    # every fine-tune's training curve: a row per format and epoch, drawn beside it
    curves = read_rows(outputs / "qat_training_curves.csv")
    assert {(r["format"], r["epoch"]) for r in curves} == {(f, str(e)) for f in ("fp32", "fp16", "bf16", "int4", "int8")
                                                          for e in (1, 2)}
    assert all(float(r["train_loss"]) > 0 for r in curves) and (outputs / "qat_training_curves.png").exists()


def test_scaling_law_rows_and_frontier(outputs):
    rows = read_rows(outputs / "scaling_law.csv")
    ptq = [r for r in rows if r["method"] == "PTQ"]
    assert len(ptq) == 2 * (2 * 2 * 2 + 1)      # models x (dtypes x blocks x bits + float16)
    assert len(rows) - len(ptq) == 2 * 2 * 1    # QAT on vgg11: dtypes x blocks x qat bits
    for model in ("vgg11", "vgg16"):
        bits = {int(r["bits"]): int(r["total_bits"]) for r in ptq
                if r["model"] == model and r["data_type"] == "int" and r["block"] == "per-channel"}
        half = next(int(r["total_bits"]) for r in ptq if r["model"] == model and r["data_type"] == "float16")
        assert bits[2] < bits[4] < half
    frontier = read_rows(outputs / "scaling_law_frontier.csv")
    assert frontier and all(r["bit_optimal_k"] in {"2", "4", "16"} for r in frontier)
    assert (outputs / "scaling_law.png").exists() and (outputs / "scaling_law_vgg11.png").exists()


def test_mixed_precision_adaptive_configs_respect_the_budget(outputs):
    traces = read_rows(outputs / "hessian_trace.csv")
    assert len(traces) == 10 and all(float(r["input_mean_square"]) > 0 for r in traces)
    rows = read_rows(outputs / "mixed_precision.csv")
    budget = next(int(r["total_bits"]) for r in rows if r["kind"] == "first/last fp16")
    adaptive = [r for r in rows if r["kind"].startswith("adaptive")]
    assert len(adaptive) == 2 and all(int(r["total_bits"]) <= budget for r in adaptive)
    assert all(len(r["layer_bits"].split("-")) == 10 for r in adaptive)
    assert {r["kind"] for r in rows} >= {"uniform", "real fp32", "real int8", "real int8, first/last fp32"}
    real = {r["kind"]: r for r in rows if r["kind"].startswith("real")}
    assert all(r["latency_ms"] == "" for r in rows if r["simulated"] == "yes")
    assert len({r["timing_session"] for r in real.values()}) == 1
    assert int(real["real int8"]["int8_kernels"]) == 10 and int(real["real int8, first/last fp32"]["int8_kernels"]) == 8
    assert all(activation_range_note() in real[kind]["kernel"] for kind in ("real int8", "real int8, first/last fp32"))
    for kind, name in (("real int8", "mixed_precision_int8"), ("real int8, first/last fp32",
                                                               "mixed_precision_int8_first_last_fp32")):
        assert int(real[kind]["size_bytes"]) == (quantized_files(outputs) / f"{name}.pt2").stat().st_size


def test_outlier_outputs(outputs):
    stats = read_rows(outputs / "outliers_stats.csv")
    assert len(stats) == 10 and all(float(r["act_absmax"]) >= float(r["act_p99_99"]) >= float(r["act_p99_9"]) for r in stats)
    assert float(stats[1]["act_fraction_negative"]) == 0.0   # inputs after a ReLU
    rows = read_rows(outputs / "outliers.csv")
    assert len(rows) == len(BITS) * len(SCOPES) * len(QUANTIZERS)
    per_layer = read_rows(outputs / "outliers_per_layer.csv")
    assert len(per_layer) == 10 * 2 * 2
    for name in ("outliers_distributions", "outliers_clipping", "outliers_per_layer"):
        assert (outputs / f"{name}.png").exists() and (outputs / f"{name}.pdf").exists()
