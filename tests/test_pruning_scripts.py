"""Every pruning script runs on the smoke profile and writes its CSV, figure and provenance."""

import pytest

from common.results import read_rows
from pruning.study import CHANNEL_GRID, SPARSITY_GRID
from tests.conftest import SMOKE_RUN


@pytest.fixture(scope="module")
def pruning_outputs(cifar_root, tmp_path_factory, smoke_scripts):
    """Run all eight scripts once, in order, into one temporary results/checkpoints tree."""
    tmp = smoke_scripts(tmp_path_factory.mktemp("pruning"), cifar_root, "pruning", [
        ("01_unstructured_sensitivity",), ("02_unstructured_final",), ("03_structured_sensitivity",),
        ("04_structured_final",), ("05_weight_histograms",),
        ("06_compare_models", "--batch-sizes", "1", "8", "--rounds", "3"),
        ("07_gradcam", "--images", "4"), ("08_accuracy_vs_sparsity", "--targets", "0.5", "0.7")])
    return tmp / "results" / SMOKE_RUN / "pruning"


def test_sensitivity_sweeps_cover_every_layer(pruning_outputs):
    rows = read_rows(pruning_outputs / "unstructured_sensitivity.csv")
    assert len(rows) == 10 * len(SPARSITY_GRID)  # 8 convs + 2 linears
    assert sorted({float(r["sparsity"]) for r in rows}) == list(SPARSITY_GRID)
    paper = [f"conv{i}" for i in range(1, 9)] + ["fc1", "fc2"]     # as the figures name the layers
    assert list(dict.fromkeys(r["layer_name"] for r in rows)) == paper
    rows = read_rows(pruning_outputs / "structured_sensitivity.csv")
    assert len(rows) == 8 * len(CHANNEL_GRID)
    assert list(dict.fromkeys(r["layer_name"] for r in rows)) == paper[:8]
    assert all(int(r["channels_after"]) < int(r["channels_before"]) for r in rows)
    for name in ("unstructured_sensitivity", "structured_sensitivity"):
        assert (pruning_outputs / f"{name}.png").exists() and (pruning_outputs / f"{name}.json").exists()


def test_unstructured_final_hits_70_percent(pruning_outputs):
    rows = read_rows(pruning_outputs / "unstructured_final.csv")
    zeros, params = sum(int(r["zeros"]) for r in rows), sum(int(r["params"]) for r in rows)
    assert zeros / params == pytest.approx(0.70, abs=0.005)
    for kind in ("unstructured", "structured"):   # the fine-tunes' curves, a row per epoch
        curves = read_rows(pruning_outputs / f"{kind}_final_curves.csv")
        assert [(r["model"], r["epoch"]) for r in curves] == [(f"vgg11_{kind}70", "1")]
    assert {r["target_sparsity"] for r in read_rows(pruning_outputs / "accuracy_vs_sparsity_curves.csv")} == {"0.5", "0.7"}


def test_structured_final_keeps_about_30_percent(pruning_outputs):
    rows = read_rows(pruning_outputs / "structured_final.csv")
    assert len(rows) == 8 and all(int(r["channels_after"]) <= int(r["channels_before"]) for r in rows)
    models = {r["model"]: r for r in read_rows(pruning_outputs / "pruned_models.csv") if r["batch_size"] == "1"}
    dense = {k: int(v["size_bytes_dense"]) for k, v in models.items()}
    assert 0.25 < dense["structured"] / dense["original"] < 0.38
    assert int(models["unstructured"]["size_bytes_compact"]) < 0.45 * dense["unstructured"]
    assert float(models["unstructured"]["overall_sparsity"]) == pytest.approx(0.70, abs=0.005)
    # channel pruning's gain is fewer multiply-accumulates; unstructured zeros are still computed
    macs = {k: int(v["macs"]) for k, v in models.items()}
    assert macs["structured"] < 0.5 * macs["original"] and macs["unstructured"] == macs["original"]
    assert int(models["structured"]["params"]) < int(models["original"]["params"]) == int(models["unstructured"]["params"])


def test_comparison_gradcam_and_sweep_outputs(pruning_outputs):
    rows = read_rows(pruning_outputs / "pruned_models.csv")
    assert {(r["model"], r["batch_size"]) for r in rows} == {
        (m, b) for m in ("original", "unstructured", "structured") for b in ("1", "8")}
    assert all(float(r["latency_ms"]) > 0 for r in rows)
    assert len({r["timing_session"] for r in rows}) == 1      # every model and batch timed together
    cams = read_rows(pruning_outputs / "gradcam_pruning.csv")
    assert len(cams) == 3 * 4
    assert all(float(r["cam_pearson_to_original"]) == pytest.approx(1.0) for r in cams if r["model"] == "original")
    sweep = read_rows(pruning_outputs / "accuracy_vs_sparsity.csv")
    assert [float(r["overall_sparsity"]) for r in sweep] == pytest.approx([0.5, 0.7], abs=0.005)
    for name in ("weight_histograms", "weight_histograms_structured", "gradcam_pruning", "accuracy_vs_sparsity"):
        assert (pruning_outputs / f"{name}.png").stat().st_size > 10_000
