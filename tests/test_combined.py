"""Combined pipelines and the Pareto collection: smoke runs of both scripts, fronts by hand."""

import pytest

from combined.pareto import collect_points, pareto_front, with_fronts, with_latencies
from combined.pipelines import PIPELINES
from common.results import read_rows
from quantization.pt2e import activation_range_note
from tests.conftest import SMOKE_RUN


@pytest.fixture(scope="module")
def outputs(cifar_root, tmp_path_factory, smoke_scripts):
    """Every CSV the Pareto script reads, on the smoke profile, then both combined scripts."""
    tmp = tmp_path_factory.mktemp("combined")
    smoke_scripts(tmp, cifar_root, "common", [("train", "--model", "vgg11", "vgg16", "vgg19")])
    smoke_scripts(tmp, cifar_root, "pruning", [("06_compare_models", "--rounds", "1")])
    smoke_scripts(tmp, cifar_root, "quantization", [
        ("01_ptq", "--rounds", "2"),
        ("04_mixed_precision", "--hessian-images", "64", "--hutchinson-samples", "2", "--rounds", "2")])
    smoke_scripts(tmp, cifar_root, "distillation", [("01_students", "--methods", "independent", "kd",
                                                     "--seeds", "0", "1")])
    smoke_scripts(tmp, cifar_root, "combined", [("01_pipelines", "--rounds", "2"), ("02_pareto", "--rounds", "2")])
    return tmp / "results" / SMOKE_RUN


def test_every_pipeline_stage_is_measured(outputs):
    rows = read_rows(outputs / "combined" / "pipelines.csv")
    stages = {name: len(steps) + 1 for name, (_, steps) in PIPELINES.items()}
    assert [(r["pipeline"], int(r["stage"])) for r in rows] == [(n, i) for n, k in stages.items() for i in range(k)]
    by = {(r["pipeline"], int(r["stage"])): r for r in rows}
    # pruning to 70% leaves 70% zeros, which int8 keeps; the sparse files shrink at each step
    assert float(by["kd_prune_int8", 1]["weight_sparsity"]) == pytest.approx(0.7, abs=0.01)
    assert float(by["kd_prune_int8", 2]["weight_sparsity"]) == pytest.approx(0.7, abs=0.01)
    sizes = [int(by["kd_prune_int8", i]["size_bytes"]) for i in range(3)]
    assert sizes[0] > sizes[1] and sizes[0] > sizes[2]
    # the int8 stages' files are the saved int8 programs that were scored
    for key in (("kd_prune_int8", 2), ("structured_int8_qat", 1)):
        assert by[key]["size_format"].startswith("torch.export int8 program")
    # the int8 QAT stage's size is its saved program (at smoke width its graph outweighs the weights)
    program = outputs.parents[1] / "checkpoints" / SMOKE_RUN / "combined" / "structured_int8_qat_1.pt2"
    assert int(by["structured_int8_qat", 1]["size_bytes"]) == program.stat().st_size
    # simulated int4 stages carry no latency; real ones do, all timed in one session
    for r in rows:
        assert (r["latency_ms"] == "") == (r["simulated"] == "yes")
        assert 0 <= float(r["top1_acc"]) <= 100 and 0 <= float(r["val_top1_acc"]) <= 100
    assert len({r["timing_session"] for r in rows if r["latency_ms"]}) == 1
    assert int(by["kd_prune_int8", 2]["int8_kernels"]) == 10 and by["kd_prune_int8", 2]["runs_as"] == "int8"
    assert activation_range_note() in by["kd_prune_int8", 2]["kernel"]   # 7-bit activations on a CPU without VNNI


def test_pareto_points_cover_every_family(outputs):
    points = read_rows(outputs / "combined" / "pareto_points.csv")
    assert {p["family"] for p in points} == {"baseline", "pruned", "quantized", "mixed precision",
                                             "distilled", "combined"}
    assert any(p["on_size_front"] == "yes" for p in points)
    # every latency shown was timed here, in one session; students enter once per method, as seed means
    assert len({p["timing_session"] for p in points if p["latency_ms"]}) == 1
    assert all(p["latency_ms"] == "" for p in points if p["simulated"] == "yes")
    students = [p for p in points if p["family"] == "distilled"]
    assert len(students) == 2 and all(p["seeds"] == "2" and p["top1_std"] != "" for p in students)
    assert (outputs / "combined" / "pareto.png").exists() and (outputs / "combined" / "pareto.pdf").exists()
    # MACs beside size: a channel-pruned model costs fewer than VGG-11, and the MACs figure is drawn
    macs = {p["model"]: int(p["macs"]) for p in points}
    assert all(int(p["macs"]) > 0 and int(p["params"]) > 0 for p in points)
    assert macs["structured 70%"] < macs["VGG-11"] == macs["unstructured 70%"] < macs["VGG-16"]
    assert (outputs / "combined" / "pareto_macs.png").exists()
    curves = read_rows(outputs / "baselines" / "curves.csv")              # the baselines' training curves
    assert [(r["model"], r["seed"], r["epoch"]) for r in curves] == [(m, "0", "1") for m in ("vgg11", "vgg16", "vgg19")]


def test_pareto_front_by_hand():
    points = [{"val_top1_acc": 80.0, "size_bytes": 100}, {"val_top1_acc": 85.0, "size_bytes": 200},
              {"val_top1_acc": 84.0, "size_bytes": 300},     # dominated by the second
              {"val_top1_acc": 80.0, "size_bytes": 100},     # a tie is not domination
              {"val_top1_acc": 90.0, "size_bytes": ""}]      # no size: never on the size front
    assert pareto_front(points, "size_bytes") == [True, True, False, True, False]


def test_the_fronts_are_chosen_on_validation_not_test():
    """The bug: on_size_front / on_latency_front compared test top-1."""
    points = [{"family": "baseline", "model": "VGG-11", "top1_acc": 80.0, "val_top1_acc": 82.0,
               "size_bytes": 100, "latency_ms": 5.0, "timing_session": "s-cuda"},
              {"family": "quantized", "model": "lucky on test", "top1_acc": 81.0, "val_top1_acc": 79.0,
               "size_bytes": 200, "latency_ms": 6.0, "timing_session": "s-cuda"}]
    fronts = with_fronts(points)
    assert [p["on_size_front"] for p in fronts] == ["yes", "no"]
    assert [p["on_latency_front"] for p in fronts] == ["yes", "no"]


def test_pareto_rows_keep_latencies_of_one_session_only():
    """The bug: a GPU run's pareto_points.csv kept the CPU-only int8 reading (40 ms, its own
    session) in latency_ms beside the CUDA baseline's 2 ms."""
    points = [{"family": "baseline", "model": "VGG-11", "top1_acc": 80.0, "val_top1_acc": 80.0,
               "size_bytes": 100, "latency_ms": 2.0, "timing_session": "pareto-x-cuda"},
              {"family": "quantized", "model": "int8", "top1_acc": 80.0, "val_top1_acc": 80.0,
               "size_bytes": 25, "latency_ms": 40.0, "timing_session": "pareto-x-cpu"}]
    rows = with_fronts(points)
    assert rows[0]["latency_ms"] == 2.0
    assert rows[1]["latency_ms"] == "" and rows[1]["other_session_latency_ms"] == 40.0
    assert rows[1]["on_latency_front"] == "no"


def test_collect_points_reads_every_results_file(tmp_path, write_csv):
    write = write_csv
    write(tmp_path / "baselines/baselines.csv", [{"model": "vgg11", "top1_acc": 80, "val_top1_acc": 81}])
    write(tmp_path / "pruning/pruned_models.csv", [
        {"model": m, "top1_acc": 79, "val_top1_acc": 78, "size_bytes_compact": 50, "batch_size": b}
        for m in ("original", "structured") for b in (1, 256)])
    write(tmp_path / "quantization/ptq.csv", [
        {"format": "int8", "scheme": "W8A8 static (torchao PT2E)", "top1_acc": 80, "val_top1_acc": 80,
         "size_bytes": 25, "simulated": "no"},
        {"format": "int8", "scheme": "W8A8 (fake-quant check)", "top1_acc": 80, "val_top1_acc": 80,
         "size_bytes": 25, "simulated": "yes"}])
    write(tmp_path / "quantization/mixed_precision.csv", [
        {"config": "u4", "top1_acc": 60, "val_top1_acc": 61, "size_bytes": 5, "simulated": "yes"},
        {"config": "fp32", "top1_acc": 80, "val_top1_acc": 81, "size_bytes": 100, "simulated": "no"}])  # left out
    write(tmp_path / "distillation/students.csv", [
        {"method": "kd", "teacher": "vgg16", "seed": s, "top1_acc": acc, "val_top1_acc": acc, "train_seconds": 1}
        for s, acc in ((0, 81), (1, 83))])
    write(tmp_path / "combined/pipelines.csv", [
        {"pipeline": "p", "stage": s, "step": f"s{s}", "top1_acc": 80, "val_top1_acc": 80, "size_bytes": 10,
         "simulated": "yes", "architecture": "vgg11/9 params", "runs_as": "", "params": 5, "macs": 7} for s in (0, 1)])
    archs = {"vgg11": "vgg11/9 params", "structured": "vgg11/4 params"}
    points = collect_points(tmp_path, archs, {"vgg11": 100}, {"vgg11": (9, 90), "structured": (4, 40)})
    assert [(p["params"], p["macs"]) for p in points] == [(9, 90), (4, 40)] + [(9, 90)] * 4 + [(5, 7)]
    assert [p["family"] for p in points] == ["baseline", "pruned", "quantized", "quantized", "mixed precision",
                                             "distilled", "combined"]
    # latency classes: architecture and kernels; simulated formats get none
    assert [p["latency_class"] for p in points] == ["vgg11/9 params fp32", "vgg11/4 params fp32",
                                                    "vgg11/9 params int8", "", "", "vgg11/9 params fp32", ""]
    # the student is one point: the mean of its seeds, with their spread and its architecture's size
    assert (points[5]["top1_acc"], points[5]["seeds"], points[5]["size_bytes"]) == (82.0, 2, 100)
    assert points[5]["top1_std"] == pytest.approx(1.41, abs=0.01) and points[5]["val_top1_acc"] == 82.0
    timed = with_latencies(points, {"vgg11/9 params fp32": {"latency_ms": 7.0, "timing_session": "s"},
                                    "vgg11/4 params fp32": {"latency_ms": 3.0, "timing_session": "s"}})
    assert [p["latency_ms"] for p in timed] == [7.0, 3.0, "", "", "", 7.0, ""]
    assert [p["on_size_front"] for p in with_fronts(timed)] == ["no", "no", "no", "no", "yes", "yes", "yes"]


def test_fronts_only_recomputes_the_fronts_from_the_csv(outputs, cifar_root, tmp_path, smoke_scripts):
    import shutil
    shutil.copytree(outputs.parent.parent, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "results" / SMOKE_RUN / "combined" / "pareto_points.csv"
    before = read_rows(path)
    smoke_scripts(tmp_path, cifar_root, "combined", [("02_pareto", "--fronts-only")])
    after = read_rows(path)
    assert [(r["model"], r["top1_acc"], r["size_bytes"], r["latency_ms"]) for r in after] == \
        [(r["model"], r["top1_acc"], r["size_bytes"], r["latency_ms"]) for r in before]
    assert [r["on_size_front"] for r in after] == [r["on_size_front"] for r in before]
