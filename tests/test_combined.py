"""Combined pipelines and the Pareto collection: smoke runs of both scripts, fronts by hand."""

import pytest

from combined.pareto import collect_points, pareto_front, with_fronts
from combined.pipelines import PIPELINES
from common.results import read_rows


@pytest.fixture(scope="module")
def outputs(cifar_root, tmp_path_factory, smoke_scripts):
    """Every CSV the Pareto script reads, on the smoke profile, then both combined scripts."""
    tmp = tmp_path_factory.mktemp("combined")
    smoke_scripts(tmp, cifar_root, "common", [("train", "--model", "vgg11", "vgg16", "vgg19")])
    smoke_scripts(tmp, cifar_root, "pruning", [("06_compare_models", "--repeats", "2", "--rounds", "1")])
    smoke_scripts(tmp, cifar_root, "quantization", [
        ("01_ptq", "--repeats", "2"),
        ("04_mixed_precision", "--hessian-images", "64", "--hutchinson-samples", "2", "--repeats", "2")])
    smoke_scripts(tmp, cifar_root, "distillation", [("01_students", "--methods", "independent", "kd")])
    smoke_scripts(tmp, cifar_root, "combined", [("01_pipelines", "--repeats", "2"), ("02_pareto", "--repeats", "2")])
    return tmp / "results" / "cifar10-smoke"


def test_every_pipeline_stage_is_measured(outputs):
    rows = read_rows(outputs / "combined" / "pipelines.csv")
    stages = {name: len(steps) + 1 for name, (_, steps) in PIPELINES.items()}
    assert [(r["pipeline"], int(r["stage"])) for r in rows] == [(n, i) for n, k in stages.items() for i in range(k)]
    by = {(r["pipeline"], int(r["stage"])): r for r in rows}
    # pruning to 70% leaves 70% zeros, which int8 keeps; the sparse files shrink at each step
    assert float(by["kd_prune_int8", 1]["weight_sparsity"]) == pytest.approx(0.7, abs=0.01)
    assert float(by["kd_prune_int8", 2]["weight_sparsity"]) == pytest.approx(0.7, abs=0.01)
    sizes = [int(by["kd_prune_int8", i]["size_bytes"]) for i in range(3)]
    assert sizes[0] > sizes[1] > sizes[2]
    # the channel-pruned model is smaller than the KD student; int8 QAT shrinks it further
    assert int(by["structured_int8_qat", 1]["size_bytes"]) < int(by["structured_int8_qat", 0]["size_bytes"])
    # simulated int4 stages carry no latency; real ones do
    for r in rows:
        assert (r["latency_ms"] == "") == (r["simulated"] == "yes")
        assert 0 <= float(r["top1_acc"]) <= 100


def test_pareto_points_cover_every_family(outputs):
    points = read_rows(outputs / "combined" / "pareto_points.csv")
    assert {p["family"] for p in points} == {"baseline", "pruned", "quantized", "mixed precision",
                                             "distilled", "combined"}
    assert any(p["on_size_front"] == "yes" for p in points)
    assert (outputs / "combined" / "pareto.png").exists() and (outputs / "combined" / "pareto.pdf").exists()


def test_pareto_front_by_hand():
    points = [{"top1_acc": 80.0, "size_bytes": 100}, {"top1_acc": 85.0, "size_bytes": 200},
              {"top1_acc": 84.0, "size_bytes": 300},     # dominated by the second
              {"top1_acc": 80.0, "size_bytes": 100},     # a tie is not domination
              {"top1_acc": 90.0, "size_bytes": ""}]      # no size: never on the size front
    assert pareto_front(points, "size_bytes") == [True, True, False, True, False]


def test_collect_points_reads_every_results_file(tmp_path, write_csv):
    write = write_csv
    write(tmp_path / "baselines/baselines.csv", [{"model": "vgg11", "top1_acc": 80}])
    write(tmp_path / "pruning/pruned_models.csv", [
        {"model": m, "top1_acc": 79, "size_bytes_compact": 50, "batch_size": b} for m in ("original", "structured")
        for b in (1, 256)])
    write(tmp_path / "quantization/ptq.csv", [
        {"format": "int8", "scheme": "W8A8", "top1_acc": 80, "size_bytes": 25, "simulated": "no",
         "kernel": "int8 via torch.compile", "latency_ms": 5, "latency_batch": 256},
        {"format": "bf16", "scheme": "cast", "top1_acc": 80, "size_bytes": 50, "simulated": "no",
         "kernel": "bf16 conv, eager", "latency_ms": 3, "latency_batch": 256}])
    write(tmp_path / "quantization/mixed_precision.csv", [
        {"config": "u4", "top1_acc": 60, "size_bytes": 5, "simulated": "yes"},
        {"config": "fp32", "top1_acc": 80, "size_bytes": 100, "simulated": "no"}])   # a reference row, left out
    write(tmp_path / "distillation/students.csv", [{"method": "kd", "teacher": "vgg16", "top1_acc": 81}])
    write(tmp_path / "combined/pipelines.csv", [
        {"pipeline": "p", "stage": s, "step": f"s{s}", "top1_acc": 80, "size_bytes": 10, "latency_ms": "",
         "simulated": "yes"} for s in (0, 1)])
    points = with_fronts(collect_points(tmp_path, {"vgg11": {"size_bytes": 100, "latency_ms": 7.0},
                                                   "structured": {"size_bytes": 60, "latency_ms": 3.0}}))
    assert [p["family"] for p in points] == ["baseline", "pruned", "quantized", "quantized", "mixed precision",
                                             "distilled", "combined"]
    # only compiled latencies count; the student has its architecture's size and latency
    assert [p["latency_ms"] for p in points] == [7.0, 3.0, "5", "", "", 7.0, ""]
    assert points[5]["size_bytes"] == 100
    assert [p["on_size_front"] for p in points] == ["no", "no", "no", "no", "yes", "yes", "yes"]
