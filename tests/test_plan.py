"""The cost plan: job counts follow the stage declaration (study.stages) and the stages' own
lists, the projection's arithmetic, the CLI."""

import json
import math
from pathlib import Path

import pytest

import dataclasses

from common.profiles import PROFILES
from study import plan
from study.stages import STAGES, stage_named
from study.throughput import MissingThroughput, ThroughputTable, read_throughput_csv

ROOT = Path(__file__).resolve().parents[1]


def stage_jobs(work, stage):
    return [j for j in work.jobs if j.stage == stage]


@pytest.fixture(scope="module")
def cpu_work():
    return plan.plan_work(PROFILES["cpu"])


def test_students_are_every_method_at_three_seeds_plus_the_dkd_candidates(cpu_work):
    from distillation.names import student_seeds
    from distillation.study import DKD_GRID, STUDENTS

    students = stage_jobs(cpu_work, "distillation/01_students")
    # shared: the published 'dkd' candidate is the 'dkd' student of seed 0, and dkd_tuned at seed 0
    # is the selected candidate
    assert len(students) == len(STUDENTS) * 3 + len(DKD_GRID) - 2
    for profile, seeds in (("cpu", [0, 1, 2]), ("smoke", [0])):   # the script's own default, the study's
        args = stage_named("distillation/01_students").arguments(PROFILES[profile])
        assert student_seeds(args.seeds, args.seed, profile) == seeds
    assert all(j.epochs == PROFILES["cpu"].student_epochs and j.model == "vgg11" for j in students)
    assert {j.teacher for j in students} == {"none", "vgg16"}


def test_selecting_the_published_dkd_shares_two_more_students():
    from distillation.study import DKD_GRID, STUDENTS

    work = plan.plan_work(PROFILES["cpu"], dkd_selected="dkd")
    assert len(stage_jobs(work, "distillation/01_students")) == len(STUDENTS) * 3 + len(DKD_GRID) - 4
    smoke = plan.plan_work(PROFILES["smoke"], dkd_selected="dkd_beta1")
    assert len(stage_jobs(smoke, "distillation/01_students")) == len(STUDENTS) + len(DKD_GRID) - 2


def test_each_cached_training_is_counted_once_under_its_first_stage(cpu_work):
    cached = [j.name for j in cpu_work.jobs if j.cached]
    assert len(cached) == len(set(cached))
    assert [j.name for j in stage_jobs(cpu_work, "baselines")] == ["vgg11_seed0", "vgg16_seed0", "vgg19_seed0"]
    colour_methods = stage_named("distillation/04_color_invariance").arguments(PROFILES["cpu"]).methods
    colour = stage_jobs(cpu_work, "distillation/04_color_invariance")
    assert len(colour) == 1 + len(colour_methods)   # T_colour, then one student per method from it
    assert colour[0].name == "vgg16_colour_seed0" and colour[0].epochs == PROFILES["cpu"].finetune_epochs
    assert all(j.teacher == "vgg16-colour" for j in colour[1:])
    assert [j.name for j in stage_jobs(cpu_work, "distillation/05_teacher_size")] == ["student_kd_vgg19_seed0"]
    for stage in ("distillation/02_alignment", "distillation/03_gradcam", "pruning/05_weight_histograms",
                  "combined/02_pareto"):
        assert stage_jobs(cpu_work, stage) == [] and cpu_work.reused[stage]
    assert "student_kd_vgg16_seed0" in cpu_work.reused["combined/01_pipelines"]


def test_pruning_quantization_and_combined_counts_follow_their_lists(cpu_work):
    from combined.pipelines import PIPELINES
    from quantization.scaling_law import sweep_specs

    targets = stage_named("pruning/08_accuracy_vs_sparsity").arguments(PROFILES["cpu"]).targets
    assert len(stage_jobs(cpu_work, "pruning/08_accuracy_vs_sparsity")) == len(targets)
    structured = stage_jobs(cpu_work, "pruning/04_structured_final")
    assert [(j.name, j.model) for j in structured] == [("vgg11_structured70_seed0", "vgg11-channel-pruned")]
    qat = stage_jobs(cpu_work, "quantization/02_qat")
    from quantization.formats import QAT_FORMATS

    assert [j.variant for j in qat] == list(QAT_FORMATS.values())
    scaling = stage_named("quantization/03_scaling_law").arguments(PROFILES["cpu"])
    assert len(stage_jobs(cpu_work, "quantization/03_scaling_law")) == len(sweep_specs(tuple(scaling.qat_bits))) - 1
    trainings = sum(bool(step.trains) for _, steps in PIPELINES.values() for step in steps)
    assert len(stage_jobs(cpu_work, "combined/01_pipelines")) == trainings


def test_adding_a_job_to_a_stages_declaration_changes_the_plan(monkeypatch):
    """The plan has no list of its own: a baselines stage that also trains VGG-13 is one more
    training, with no edit to the plan's code."""
    import study.plan as plan_module
    from common.baselines import baseline_jobs

    before = plan.plan_work(PROFILES["cpu"], "dkd_beta1")
    wider = dataclasses.replace(STAGES[0], jobs=lambda a, s: baseline_jobs([*a.models, "vgg13"], a.seed))
    monkeypatch.setattr(plan_module, "STAGES", [wider, *STAGES[1:]])
    after = plan.plan_work(PROFILES["cpu"], "dkd_beta1")
    assert len(after.jobs) == len(before.jobs) + 1
    assert [j.name for j in after.jobs if j.stage == "baselines"][-1] == "vgg13_seed0"


def test_a_stages_arguments_are_read_from_its_own_parser_without_running_it(isolated_outputs):
    defaults = stage_named("pruning/08_accuracy_vs_sparsity").arguments(PROFILES["cpu"])
    assert all(0 < t < 1 for t in defaults.targets) and defaults.profile == "cpu"
    assert stage_named("quantization/03_scaling_law").arguments(PROFILES["cpu"]).with_pruned
    assert not (isolated_outputs / "results").exists()


def write_throughput(path, rows):
    columns = ["model", "width", "batch_size", "teacher", "variant", "train_images_per_second",
               "infer_images_per_second"]
    path.write_text(",".join(columns) + "\n" + "".join(
        ",".join(str(r.get(c, "")) for c in columns) + "\n" for r in rows))
    return path


def full_table(tmp_path, width=0.5, batch=128):
    rows = [{"model": "vgg11", "train_images_per_second": 1000, "infer_images_per_second": 4000},
            {"model": "vgg16", "train_images_per_second": 500, "infer_images_per_second": 2000},
            {"model": "vgg19", "train_images_per_second": 400, "infer_images_per_second": 1600},
            {"model": "vgg11", "teacher": "vgg16", "train_images_per_second": 600},
            {"model": "vgg11", "variant": "fake-quant", "train_images_per_second": 300, "infer_images_per_second": 800},
            {"model": "vgg11", "variant": "pt2e-qat", "train_images_per_second": 100}]
    return write_throughput(tmp_path / "throughput.csv", [{"width": width, "batch_size": batch, **r} for r in rows])


def test_projection_is_images_over_images_per_second(tmp_path, cpu_work):
    table = read_throughput_csv(full_table(tmp_path), 0.5, 128)
    projection = plan.project(cpu_work, table)
    sizes = plan.Sizes.of(PROFILES["cpu"])
    vgg16 = next(r for r in projection.job_rows if r["job"] == "vgg16_seed0")
    epochs = PROFILES["cpu"].epochs
    assert vgg16["train_seconds"] == pytest.approx(epochs * sizes.per_epoch / 500)
    assert vgg16["eval_seconds"] == pytest.approx((epochs * sizes.val + sizes.test) / 2000)
    kd = next(r for r in projection.job_rows if r["job"] == "student_kd_vgg16_seed1")
    assert kd["train_seconds"] == pytest.approx(PROFILES["cpu"].student_epochs * sizes.per_epoch / 600)
    int8 = next(r for r in projection.job_rows if r["job"] == "qat-int8")
    assert int8["train_seconds"] == pytest.approx(PROFILES["cpu"].finetune_epochs * sizes.per_epoch / 100)
    assert int8["eval_seconds"] == pytest.approx(int8["eval_images"] / 800)    # read through fake-quant
    assert projection.total_seconds == pytest.approx(
        sum(r["train_seconds"] + r["eval_seconds"] for r in projection.job_rows)
        + sum(e["seconds"] for e in projection.evaluation_rows), rel=1e-4)
    # the teacher pair vgg11<-vgg19 is not in the file: student step + teacher forward, labelled
    vgg19_pair = next(f for f in projection.figures if f["teacher"] == "vgg19")
    assert vgg19_pair["images_per_second"] == pytest.approx(1 / (1 / 1000 + 1 / 1600), abs=0.1)
    assert vgg19_pair["source"] == "estimated" and "vgg19 forward" in vgg19_pair["note"]
    assert all(f["source"] == "estimated" for f in projection.figures if f["model"] == "vgg11-channel-pruned")


def test_estimates_are_labelled_and_a_missing_model_is_one_clear_error(tmp_path):
    table = ThroughputTable("hand-made", "cpu", 1.0, 128, train={("vgg11", "none", "plain"): 1000.0})
    assert table.inference("vgg11").estimated and table.inference("vgg11").images_per_second == 1000.0
    assert "priced as a plain step" in table.training("vgg11", variant="pt2e-qat").note
    with pytest.raises(MissingThroughput, match=r"no training throughput for vgg19 .*\(it has: vgg11\)"):
        table.training("vgg19")
    with pytest.raises(MissingThroughput, match="no row at width 0.5"):
        read_throughput_csv(full_table(tmp_path, width=1.0), 0.5, 128)


def test_device_check_rows_of_the_run_step_mode_and_one_process_are_read(tmp_path, write_csv):
    rows = [{"model": "vgg11", "width": 1.0, "batch_size": 128, "step": step, "jobs": jobs,
             "train_images_per_second": ips, "device": device}
            for device in ("cuda (a GPU)",)
            for step, jobs, ips in (("eager", 1, 100), ("graphed", 1, 200), ("graphed", 2, 350))]
    table = read_throughput_csv(write_csv(tmp_path / "cuda.csv", rows), 1.0, 128)
    assert table.training("vgg11").images_per_second == 200 and table.device == "cuda (a GPU)"
    cpu = read_throughput_csv(write_csv(tmp_path / "cpu.csv", [{**r, "device": "cpu (x)"} for r in rows]), 1.0, 128)
    assert cpu.training("vgg11").images_per_second == 100


def test_cli_lists_full_cifar100_without_data_and_ends_with_the_total(tmp_path, isolated_outputs, capsys):
    csv = full_table(tmp_path, width=1.0)
    plan.main(["--profile", "full", "--dataset", "cifar100", "--data-dir", str(tmp_path / "nowhere"),
               "--throughput", str(csv), "--compare-measured"])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("projected_minutes=") and float(out[-1].split("=")[1]) > 0
    assert any("no data loaded" in line for line in out)
    assert any("no measured results" in line for line in out)
    write_throughput(csv, [{"model": "vgg11", "width": 1.0, "batch_size": 128, "train_images_per_second": 9}])
    with pytest.raises(SystemExit, match=r"^error: no training throughput for vgg16 .*\(it has: vgg11\)"):
        plan.main(["--profile", "full", "--dataset", "cifar100", "--throughput", str(csv)])


def test_cli_measures_once_then_reuses_its_measurement(cifar_root, isolated_outputs, capsys):
    argv = ["--profile", "smoke", "--dataset", "cifar10", "--data-dir", str(cifar_root), "--no-progress",
            "--device", "cpu", "--steps", "1", "--warmup", "1", "--rounds", "1"]
    plan.main(argv)
    first = capsys.readouterr().out
    assert "throughput: measured now on cpu" in first
    cache = isolated_outputs / "results" / "cifar10-smoke" / "plan" / "throughput.csv"
    assert cache.exists() and json.loads(cache.with_suffix(".json").read_text())["device"].startswith("cpu")
    plan.main(argv)
    second = capsys.readouterr().out
    assert "measured earlier on this device" in second
    assert math.isclose(float(first.splitlines()[-1].split("=")[1]), float(second.splitlines()[-1].split("=")[1]))


def test_compare_measured_reads_the_readme_cost_table(isolated_outputs, write_csv, cpu_work, tmp_path):
    run = isolated_outputs / "results" / "cifar10-cpu"
    write_csv(run / "baselines" / "baselines.csv", [{"model": "vgg11", "train_seconds": 100},
                                                    {"model": "vgg16", "train_seconds": 200}])
    (run / "baselines" / "baselines.json").write_text(json.dumps(
        {"command": "python -m common.train --profile cpu", "wall_seconds": 5, "device": "cpu"}))
    write_csv(run / "pruning" / "unstructured_sensitivity.csv", [{"layer": "x"}])
    (run / "pruning" / "unstructured_sensitivity.json").write_text(json.dumps(
        {"command": "python pruning/01_unstructured_sensitivity.py", "wall_seconds": 42, "device": "cpu"}))
    measured = plan.measured_stage_seconds("cifar10", "cpu")
    assert measured == {"baselines": 300.0, "pruning/01_unstructured_sensitivity": 42.0}
    projection = plan.project(cpu_work, read_throughput_csv(full_table(tmp_path), 0.5, 128))
    rows = plan.comparison_rows(projection, measured)
    assert rows[-1]["measured_seconds"] == 342 and rows[-1]["stage"].startswith("total (2 measured")
    baselines = rows[0]
    assert baselines["measured_over_projected"] == round(300 / baselines["projected_seconds"], 2)


def test_pooled_stages_are_the_scripts_that_run_jobs():
    """The pooled stages (those declaring jobs) are exactly the stages whose scripts call run_jobs."""
    calling = {stage.name for stage in STAGES if "run_jobs(" in (ROOT / stage.script).read_text()}
    assert calling == set(plan.pooled_stages())


def test_concurrent_jobs_take_the_work_over_the_speedup_but_not_less_than_the_longest():
    assert plan.concurrent_seconds([100, 100, 100, 100], 1, 1.0) == 400
    assert plan.concurrent_seconds([100, 100, 100, 100], 2, 1.6) == pytest.approx(250)
    # one long job dominates: it runs at a worker's share of the speedup (1.6 / 2)
    assert plan.concurrent_seconds([300, 10, 10], 2, 1.6) == pytest.approx(375)
    assert plan.concurrent_seconds([], 4, 3.0) == 0


def test_concurrency_is_read_from_a_device_checks_concurrent_rows(tmp_path, isolated_outputs, write_csv, capsys):
    from study.throughput import concurrency_speedup

    rows = [{"model": m, "width": 1.0, "batch_size": 128, "step": "graphed", "jobs": 1, "concurrent": False,
             "train_images_per_second": r} for m, r in (("vgg11", 1000), ("vgg16", 800), ("vgg19", 700))]
    rows += [{"model": "vgg11", "width": 1.0, "batch_size": 128, "step": "graphed", "jobs": n,
              "concurrent": True, "train_images_per_second": r} for n, r in ((1, 900), (2, 1440))]
    csv = write_csv(tmp_path / "throughput.csv", rows)
    assert concurrency_speedup(csv, 2) == pytest.approx(1.6)
    assert concurrency_speedup(csv, 4) is None and concurrency_speedup(csv, 1) == 1.0
    # the concurrent x1 reading (900) does not replace the one-process figure (1000)
    assert read_throughput_csv(csv, 1.0, 128, device="cuda (test)").train[("vgg11", "none", "plain")] == 1000
    argv = ["--profile", "full", "--dataset", "cifar100", "--throughput", str(csv)]
    plan.main(argv + ["--jobs", "1"])
    alone = float(capsys.readouterr().out.strip().splitlines()[-1].split("=")[1])
    plan.main(argv + ["--jobs", "2", "--concurrency", str(csv)])
    together = float(capsys.readouterr().out.strip().splitlines()[-1].split("=")[1])
    assert together < alone
    written = isolated_outputs / "results" / "cifar100-full" / "plan" / "projection.csv"
    from common.results import read_rows, read_sidecar
    total = read_rows(written)[-1]
    assert total["stage"] == "total" and float(total["projected_seconds"]) / 60 == pytest.approx(together, abs=0.06)
    assert read_sidecar(written)["workers"] == 2
