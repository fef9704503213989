"""The READMEs' numbers come from files: generated blocks are replaced from CSVs, never typed."""

import re
import shutil
from pathlib import Path

import pytest

from common.results import PROJECT_ROOT, write_results
from study import markdown, readme


def test_the_committed_readmes_blocks_are_what_the_generator_writes_now(monkeypatch):
    """README.md and every task README: each block equals ``python -m study.readme``'s (rerun it)."""
    monkeypatch.delenv("RESULTS_DIR", raising=False)
    files = readme.refreshed()
    assert sorted(files) == sorted(PROJECT_ROOT / f for f in readme.README_FILES)
    stale = [str(path.relative_to(PROJECT_ROOT)) for path, (old, new) in files.items() if new != old]
    assert not stale, f"stale generated blocks in {stale}: run python -m study.readme"


def _copy_readmes(root: Path) -> None:
    for name in readme.README_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, root / name)


def test_a_stale_number_in_a_task_readme_is_found_and_rewritten(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RESULTS_DIR", raising=False)
    _copy_readmes(tmp_path)
    monkeypatch.setattr(readme, "PROJECT_ROOT", tmp_path)
    assert readme.main(["--check"]) == 0
    task = tmp_path / "distillation" / "README.md"
    fresh = task.read_text()
    block = re.search(r"<!-- BEGIN generated:distillation-cifar10-cpu -->.*?<!-- END", fresh, re.S)
    number = re.search(r"\| (\d+\.\d+) \|", block.group(0))
    start = block.start() + number.start(1)
    task.write_text(fresh[:start] + "99.99" + fresh[start + len(number.group(1)):])
    assert readme.main(["--check"]) == 1 and f"stale {task}" in capsys.readouterr().out
    assert readme.main(["--check", "--readme", str(task)]) == 1
    assert task.read_text() != fresh   # --check writes nothing
    assert readme.main([]) == 0 and task.read_text() == fresh
    assert readme.main(["--check"]) == 0


def test_every_block_is_in_exactly_one_readme_and_each_marker_has_a_generator(tmp_path, monkeypatch):
    monkeypatch.delenv("RESULTS_DIR", raising=False)
    _copy_readmes(tmp_path)
    monkeypatch.setattr(readme, "PROJECT_ROOT", tmp_path)
    combined = tmp_path / "combined" / "README.md"
    text = combined.read_text()
    combined.write_text(re.sub(r"<!-- BEGIN generated:costs-cifar10-cpu -->.*?<!-- END generated:costs-cifar10-cpu -->\n",
                               "", text, flags=re.S))
    with pytest.raises(ValueError, match="costs-cifar10-cpu"):
        readme.refreshed()
    combined.write_text(text + "<!-- BEGIN generated:nothing -->\n<!-- END generated:nothing -->\n")
    with pytest.raises(ValueError, match="nothing"):
        readme.refreshed()


def _slug(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_of_the_readmes_points_to_an_existing_file_and_heading():
    for name in readme.README_FILES:
        path = PROJECT_ROOT / name
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists(), f"{name}: link {target!r} points to no file"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{name}: link {target!r} names no heading"


def test_render_replaces_only_the_named_block():
    text = "a\n<!-- BEGIN generated:x -->\nold\n<!-- END generated:x -->\nb\n"
    out = readme.render(text, {"x": "new\n"})
    assert out == "a\n<!-- BEGIN generated:x -->\nnew\n<!-- END generated:x -->\nb\n"
    assert readme.render(out, {"x": "new\n"}) == out  # idempotent
    with pytest.raises(ValueError, match="'y'"):
        readme.render(text, {"y": "z"})


def test_results_block_reads_the_baselines_csv_and_the_throughput_block_the_benchmarks(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    assert "No results" in readme.results_block("cifar10-cpu")
    assert "No benchmark" in readme.throughput_block("cifar10-cpu")
    write_results([{"model": "vgg11", "width": 0.5, "epochs": 3, "top1_acc": 12.34}],
                  tmp_path / "cifar10-cpu" / "baselines" / "baselines.csv",
                  {"dataset": "cifar10", "profile": "cpu"})
    block = readme.results_block("cifar10-cpu")
    assert "| vgg11 | 0.5 | 3 | 12.34 |" in block
    write_results([{"pipeline": "fast", "model": "vgg11", "width": 0.5, "train_images_per_second": 1801.9}],
                  tmp_path / "cifar10-cpu" / "benchmark" / "throughput_vgg11_w0.5.csv",
                  {"dataset": "cifar10", "profile": "cpu"})
    assert "| fast | vgg11 | 0.5 |" in readme.throughput_block("cifar10-cpu")


def test_profiles_block_lists_every_profile():
    block = readme.profiles_block()
    assert all(f"| {name} |" in block for name in ("smoke", "cpu", "full"))


def test_key_results_choose_on_validation_never_on_test(tmp_path, monkeypatch):
    """'lucky' models have the highest test top-1 of their family (or a test top-1 within a point
    of the baseline) but a lower validation top-1: a choice on test would take them."""
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    assert "No `results" in readme.key_results_block("cifar10-cpu")
    row = dict(simulated="no", on_size_front="no", top1_std="")
    points = [{**row, "family": "baseline", "model": "VGG-11", "val_top1_acc": 81.0, "top1_acc": 80.0,
               "size_bytes": 100, "latency_ms": 5},
              {**row, "family": "quantized", "model": "int8", "val_top1_acc": 80.5, "top1_acc": 79.5,
               "size_bytes": 25, "latency_ms": 4, "on_size_front": "yes"},
              {**row, "family": "quantized", "model": "int8 lucky", "val_top1_acc": 79.0, "top1_acc": 80.5,
               "size_bytes": 30, "latency_ms": 4},
              {**row, "family": "quantized", "model": "int2 lucky", "val_top1_acc": 70.0, "top1_acc": 79.2,
               "size_bytes": 7, "latency_ms": "", "simulated": "yes", "on_size_front": "yes"},
              {**row, "family": "distilled", "model": "kd, mean of 3 seeds", "val_top1_acc": 82.0,
               "top1_acc": 81.0, "top1_std": 0.2, "size_bytes": 100, "latency_ms": 5, "on_size_front": "yes"}]
    write_results(points, tmp_path / "cifar10-cpu" / "combined" / "pareto_points.csv",
                  {"dataset": "cifar10", "profile": "cpu"})
    block = readme.key_results_block("cifar10-cpu")
    assert "| VGG-11 fp32 baseline | VGG-11 | 81.0 | 80.0 | 100 | 5 | no |" in block
    assert "| best quantized | int8 | 80.5 | 79.5 |" in block
    assert "| best distilled | kd, mean of 3 seeds | 82.0 | 81.0 ± 0.2 |" in block
    assert "| smallest within 1 point of VGG-11 | int8 | 80.5 | 79.5 | 25 |" in block
    assert "| smallest within 1 point, not simulated | int8 | 80.5 | 79.5 | 25 |" in block
    assert "lucky" not in block
    assert "| int2 lucky | 70.0 | 79.2 |" in readme.combined_block("cifar10-cpu")   # on the size front


def test_costs_count_each_trained_student_once_whatever_the_last_run_timed(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    folder = tmp_path / "cifar10-cpu" / "distillation"
    prov = {"dataset": "cifar10", "profile": "cpu", "wall_seconds": 5.0,
            "command": "python distillation/01_students.py --seeds 1"}
    # seed 0's dkd_tuned is the dkd_beta1 candidate's checkpoint: 100 + 200 + 300, then seed 1: 400 + 500
    write_results([{"candidate": "dkd", "seed": 0, "train_seconds": 100.0},
                   {"candidate": "dkd_beta1", "seed": 0, "train_seconds": 200.0}], folder / "dkd_tuning.csv", prov)
    write_results([{"method": "independent", "seed": 0, "train_seconds": 300.0, "selected_settings": ""},
                   {"method": "dkd", "seed": 0, "train_seconds": 100.0, "selected_settings": ""},
                   {"method": "dkd_tuned", "seed": 0, "train_seconds": 200.0, "selected_settings": "dkd_beta1"},
                   {"method": "independent", "seed": 1, "train_seconds": 400.0, "selected_settings": ""},
                   {"method": "dkd_tuned", "seed": 1, "train_seconds": 500.0, "selected_settings": "dkd_beta1"}],
                  folder / "students.csv", prov)
    write_results([{"method": "kd"}], folder / "alignment.csv",
                  {**prov, "wall_seconds": 60.0, "command": "python distillation/02_alignment.py"})
    block = readme.costs_block("cifar10-cpu")
    assert "| distillation/01_students | 1500 |" in block
    assert "| distillation/02_alignment | 60 |" in block and "Total so far: 26 minutes." in block


def test_the_cost_plans_files_are_not_a_stage_and_its_projection_has_a_block(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    folder = tmp_path / "cifar10-cpu"
    prov = {"dataset": "cifar10", "profile": "cpu", "wall_seconds": 60.0,
            "command": "python distillation/02_alignment.py"}
    write_results([{"method": "kd"}], folder / "distillation" / "alignment.csv", prov)
    write_results([{"stage": "distillation/02_alignment", "trainings": 0, "projected_seconds": 50,
                    "measured_seconds": 60, "measured_over_projected": 1.2},
                   {"stage": "total", "trainings": 0, "projected_seconds": 50, "measured_seconds": 60,
                    "measured_over_projected": 1.2}], folder / "plan" / "projection.csv",
                  {**prov, "wall_seconds": 900.0, "command": "python -m study.plan --profile cpu",
                   "throughput_source": "measured now on cpu", "throughput_device": "cpu (test)",
                   "projected_minutes": 0.8, "measured_minutes": 1.0})
    assert [r["stage"] for r in readme.cost_rows("cifar10-cpu")] == ["distillation/02_alignment"]
    block = readme.plan_block("cifar10-cpu")
    assert "| total | 0 | 50 | 60 | 1.2 |" in block
    assert "the plan's own benchmark" in block and "Projected 1 minutes, measured 1." in block


def test_table_cells_round_long_decimals_only():
    assert markdown.readable("85.97999811172485") == "85.98"
    assert markdown.readable("0.08333333333333333") == "0.0833"
    assert markdown.readable(1234567.1234567) == "1234567.1235" and markdown.readable("-0.0000001") == "0"
    assert [markdown.readable(v) for v in ("84.8", "9533647", "1e-05", "True", "")] == \
        ["84.8", "9533647", "1e-05", "True", ""]


def test_blocks_show_latencies_of_one_session_only(tmp_path, monkeypatch):
    """The bug: a GPU run's CPU-only int8 reading (another session) was printed in the PTQ,
    combined and key-results tables beside the CUDA readings, under text saying one session."""
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    run = tmp_path / "cifar10-full"
    prov = {"dataset": "cifar10", "profile": "full"}
    common = dict(top1_acc=80.0, val_top1_acc=80.0, simulated="no", kernel="k", int8_kernels=0, threads=1)
    write_results([{**common, "format": "fp32", "scheme": "fp32 (eager)", "size_bytes": 100, "latency_ms": 2.0,
                    "timing_session": "ptq-x-cuda"},
                   {**common, "format": "fp32", "scheme": "fp32 (torch.compile)", "size_bytes": 100,
                    "latency_ms": 1.5, "timing_session": "ptq-x-cuda"},
                   {**common, "format": "int8", "scheme": "W8A8 static (torchao PT2E)", "size_bytes": 25,
                    "latency_ms": 40.0, "timing_session": "ptq-x-cpu"}], run / "quantization" / "ptq.csv", prov)
    write_results([{"pipeline": "p", "stage": s, "step": f"s{s}", "top1_acc": 80, "size_bytes": 10, "size_format": "f",
                    "weight_sparsity": 0, "simulated": "no", "latency_ms": ms, "timing_session": session}
                   for s, ms, session in ((0, 2.0, "pl-cuda"), (1, 41.0, "pl-cpu"))],
                  run / "combined" / "pipelines.csv", prov)
    row = dict(simulated="no", on_size_front="yes", top1_std="", val_top1_acc=80.0, top1_acc=80.0)
    write_results([{**row, "family": "baseline", "model": "VGG-11", "size_bytes": 100, "latency_ms": 2.0,
                    "timing_session": "pa-cuda"},
                   {**row, "family": "quantized", "model": "int8", "size_bytes": 25, "latency_ms": 42.0,
                    "timing_session": "pa-cpu"}], run / "combined" / "pareto_points.csv", prov)
    blocks = readme.quantization_block("cifar10-full") + readme.combined_block("cifar10-full") \
        + readme.key_results_block("cifar10-full")
    assert "fp32 fp32 (eager) 0.75x" in blocks and "0.04x" not in blocks
    for reading in ("40.0", "41.0", "42.0"):
        assert reading not in blocks


def test_key_results_break_ties_by_size_and_state_int8s_speedup(tmp_path, monkeypatch):
    """The bug: an fp16 cast (twice the bytes, no latency in the Pareto session) and the int8
    model tied on validation top-1, and "best quantized" took whichever came first."""
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    row = dict(simulated="no", on_size_front="no", top1_std="", top1_acc=80.0)
    write_results([{**row, "family": "baseline", "model": "VGG-11", "val_top1_acc": 81.0, "size_bytes": 100,
                    "latency_ms": 5},
                   {**row, "family": "quantized", "model": "fp16 cast", "val_top1_acc": 81.0, "size_bytes": 50,
                    "latency_ms": ""},
                   {**row, "family": "quantized", "model": "int8", "val_top1_acc": 81.0, "size_bytes": 25,
                    "latency_ms": 2}], tmp_path / "cifar10-cpu" / "combined" / "pareto_points.csv",
                  {"dataset": "cifar10", "profile": "cpu"})
    block = readme.key_results_block("cifar10-cpu")
    assert "| best quantized | int8 | 81.0 | 80.0 | 25 | 2 | no |" in block
    assert "fastest float" not in block     # no ptq.csv yet: no speed-up line
    write_results([{"format": f, "scheme": sch, "latency_ms": ms, "timing_session": "s", "simulated": "no"}
                   for f, sch, ms in (("fp32", "fp32 (torch.compile)", 80.0), ("bf16", "bf16 cast (torch.compile)", 20.0),
                                      ("int8", "W8A8 static (torchao PT2E)", 10.0))],
                  tmp_path / "cifar10-cpu" / "quantization" / "ptq.csv", {"dataset": "cifar10", "profile": "cpu"})
    assert ("against the fastest float format timed in its session, bf16 cast (torch.compile) (20 ms): 2.00x "
            "(against fp32 under torch.compile: 8.00x)") in readme.key_results_block("cifar10-cpu")


def test_the_baselines_cost_their_training_seconds_beside_their_curves_file(tmp_path, monkeypatch):
    """The bug: the baselines' curves sidecar (same script, no train_seconds column) made the
    cost table raise KeyError, so neither the README block nor the plan's comparison was written."""
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    folder = tmp_path / "cifar10-cpu" / "baselines"
    prov = {"dataset": "cifar10", "profile": "cpu", "wall_seconds": 2.0, "command": "python -m common.train --all"}
    write_results([{"model": "vgg11", "train_seconds": 100.0}, {"model": "vgg16", "train_seconds": 250.0}],
                  folder / "baselines.csv", prov)
    write_results([{"model": "vgg11", "epoch": 1, "seconds": 7.0}], folder / "curves.csv", prov)
    assert [(r["stage"], r["wall_seconds"]) for r in readme.cost_rows("cifar10-cpu")] == \
        [("baselines/common.train", 350)]


def test_a_rederived_file_costs_the_run_that_measured_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path))
    write_results([{"model": "x"}], tmp_path / "cifar10-cpu" / "combined" / "pareto_points.csv",
                  {"dataset": "cifar10", "profile": "cpu", "command": "python combined/02_pareto.py --fronts-only",
                   "wall_seconds": 0.4, "device": "cpu (B)",
                   "derived_from": {"wall_seconds": 29.0, "device": "cpu (A)", "command": "python combined/02_pareto.py"}})
    assert readme.cost_rows("cifar10-cpu") == [{"stage": "combined/02_pareto", "wall_seconds": 29, "device": "cpu (A)"}]


def test_the_licence_and_the_citation_file_agree_and_are_named_in_the_readme():
    root = Path(__file__).resolve().parents[1]
    licence = (root / "LICENSE").read_text().splitlines()[0]
    cff = (root / "CITATION.cff").read_text()
    keys = {line.split(":", 1)[0] for line in cff.splitlines() if line and not line[0].isspace() and ":" in line}
    assert {"cff-version", "message", "title", "authors", "license", "version"} <= keys
    assert licence == "MIT License" and "\nlicense: MIT\n" in cff
    readme = (root / "README.md").read_text()
    assert "[`LICENSE`](LICENSE)" in readme and "[`CITATION.cff`](CITATION.cff)" in readme


def test_int8s_speedup_is_read_against_the_fastest_float_format_of_its_session():
    """The bug (issue 28): the PTQ table read int8's speed-up against fp32 alone; on a CPU with
    fast bf16 kernels that is 8x where the speed-up over the fastest float format is 1.5x. Now
    bf16 and fp16 are also timed compiled, and the speed-up is read against the fastest float
    row of int8's own timing session as well."""
    from quantization.speedup import int8_speedups

    def row(fmt, scheme, ms, session="s1", simulated="no"):
        return {"format": fmt, "scheme": scheme, "latency_ms": ms, "timing_session": session, "simulated": simulated}

    rows = [row("fp32", "fp32 (eager)", "90"), row("fp32", "fp32 (torch.compile)", "83"),
            row("bf16", "bf16 cast", "25.6"), row("bf16", "bf16 cast (torch.compile)", "15.1"),
            row("fp16", "fp16 cast (torch.compile)", "9.0", session="s2"),     # another session: never compared
            row("fp16", "fp16 (simulated)", "1.0", simulated="yes"),
            row("int8", "W8A8 static (torchao PT2E)", "10.1")]
    got = int8_speedups(rows)
    assert got["fastest_float"] == "bf16 cast (torch.compile)" and got["fastest_float_ms"] == 15.1
    assert got["vs_fastest_float"] == pytest.approx(15.1 / 10.1) and got["vs_fp32_compiled"] == pytest.approx(83 / 10.1)
    assert int8_speedups([r for r in rows if r["format"] != "int8"]) is None
    assert int8_speedups([{**r, "timing_session": "other"} if r["format"] == "int8" else r for r in rows]) is None
