"""Every distillation script runs on the smoke profile; the alignment measures on hand-made cases."""

import json
import math
import shutil

import pytest
import torch
from torch import nn

from common.results import read_rows, read_sidecar
from distillation.study import DKD_GRID, STUDENTS, TUNED_DKD, alignment
from tests.conftest import SMOKE_RUN


@pytest.fixture(scope="module")
def outputs(cifar_root, tmp_path_factory, smoke_scripts):
    """Run the five scripts once, in order, into one temporary results/checkpoints tree."""
    tmp = smoke_scripts(tmp_path_factory.mktemp("distillation"), cifar_root, "distillation", [
        ("01_students",), ("02_alignment",), ("03_gradcam", "--images", "4"), ("04_color_invariance",),
        ("05_teacher_size",)])
    return tmp


def folder(outputs):
    return outputs / "results" / SMOKE_RUN / "distillation"


def test_students_are_trained_once_and_listed(outputs):
    rows = read_rows(folder(outputs) / "students.csv")
    assert [r["method"] for r in rows] == list(STUDENTS)
    assert {r["teacher"] for r in rows if r["method"] in ("independent", "label_smoothing")} == {"none"}
    assert {r["teacher"] for r in rows if r["method"] not in ("independent", "label_smoothing")} == {"vgg16"}
    assert all(0 <= float(r["top1_acc"]) <= 100 and float(r["train_seconds"]) > 0 for r in rows)
    cached = sorted(p.name for p in (outputs / "checkpoints" / SMOKE_RUN).glob("student_*.pt"))
    # 5 methods + 6 DKD candidates from vgg16, 3 from the colour teacher, 1 KD student from vgg19
    # -- none twice (dkd_tuned is one of the candidates, not a checkpoint of its own)
    assert len(cached) == 5 + len(DKD_GRID) + 3 + 1 and "student_kd_vgg19_seed0.pt" in cached
    assert {f"student_{name}_vgg16_seed0.pt" for name in DKD_GRID} <= set(cached)
    curves = read_rows(folder(outputs) / "student_curves.csv")           # one row per student and epoch
    assert [r["method"] for r in curves] == list(STUDENTS) and {r["epoch"] for r in curves} == {"1"}
    assert (folder(outputs) / "student_curves.png").exists()


def test_dkd_tuned_is_the_candidate_best_on_validation(outputs):
    tuning = read_rows(folder(outputs) / "dkd_tuning.csv")
    assert [r["candidate"] for r in tuning] == list(DKD_GRID)
    assert [r["beta"] for r in tuning][:4] == ["8.0", "1.0", "2.0", "4.0"]
    selected = [r for r in tuning if r["selected"] == "True"]
    assert len(selected) == 1
    assert float(selected[0]["val_top1_acc"]) == max(float(r["val_top1_acc"]) for r in tuning)
    tuned = [r for r in read_rows(folder(outputs) / "students.csv") if r["method"] == TUNED_DKD]
    assert tuned[0]["selected_settings"] == selected[0]["candidate"]
    assert tuned[0]["top1_acc"] == selected[0]["top1_acc"]


def test_a_later_seed_keeps_the_earlier_rows_and_the_dkd_choice(outputs, cifar_root, tmp_path, smoke_scripts):
    shutil.copytree(outputs, tmp_path, dirs_exist_ok=True)  # the module's tree stays as it was
    smoke_scripts(tmp_path, cifar_root, "distillation",
                  [("01_students", "--seeds", "1", "--methods", "independent", TUNED_DKD)])
    students = folder(tmp_path) / "students.csv"
    rows = read_rows(students)
    assert [(r["method"], r["seed"]) for r in rows] == \
        [(m, "0") for m in STUDENTS] + [("independent", "1"), (TUNED_DKD, "1")]
    selected = next(r["candidate"] for r in read_rows(folder(tmp_path) / "dkd_tuning.csv") if r["selected"] == "True")
    assert rows[-1]["selected_settings"] == selected
    # seed 1 trained its two students only: the DKD choice came from dkd_tuning.csv, not a new grid
    trained = {p.name for p in (tmp_path / "checkpoints" / SMOKE_RUN).glob("student_*_seed1.pt")}
    assert trained == {"student_independent_none_seed1.pt", f"student_{selected}_vgg16_seed1.pt"}
    summary = {r["method"]: r for r in read_rows(folder(tmp_path) / "students_summary.csv")}
    assert summary["independent"]["seeds"] == "2" and summary["kd"]["seeds"] == "1"
    assert read_sidecar(students)["seeds"] == [0, 1] and read_sidecar(students)["seeds_trained"] == [1]

    # rows written with another teacher are not mixed in, even one of the same test top-1: a
    # teacher is its weights (the bug: the check compared test top-1 only)
    sidecar = read_sidecar(students)
    assert len(sidecar["teacher_weights_sha256"]) == 64
    students.with_suffix(".json").write_text(json.dumps({**sidecar, "teacher_weights_sha256": "0" * 64}))
    smoke_scripts(tmp_path, cifar_root, "distillation", [("01_students", "--seeds", "1", "--methods", "independent")])
    assert [(r["method"], r["seed"]) for r in read_rows(students)] == [("independent", "1")]
    assert not (folder(tmp_path) / "students_summary.csv").exists()  # nor left describing them


def test_alignment_and_teacher_size_rows(outputs):
    rows = read_rows(folder(outputs) / "alignment.csv")
    assert len(rows) == len(STUDENTS)
    for r in rows:
        assert float(r["kl_to_teacher"]) >= 0 and 0 <= float(r["top1_agreement"]) <= 100
    sizes = read_rows(folder(outputs) / "teacher_size.csv")
    assert [r["teacher"] for r in sizes] == ["vgg16", "vgg19"]
    assert int(sizes[1]["teacher_params"]) > int(sizes[0]["teacher_params"])
    curves = read_rows(folder(outputs) / "teacher_size_curves.csv")
    assert [(r["model"], r["teacher"]) for r in curves] == [("student_kd_vgg16", "vgg16"), ("student_kd_vgg19", "vgg19")]
    colour = read_rows(folder(outputs) / "color_invariance_curves.csv")     # the colour teacher, its students
    assert colour[0]["model"] == "vgg16_colour" and len(colour) == 1 + 3


def test_gradcam_and_colour_outputs(outputs):
    summary = read_rows(folder(outputs) / "gradcam_localization_summary.csv")
    assert [r["model"] for r in summary][:2] == ["teacher", "S_I"] and len(summary) == 1 + len(STUDENTS)
    teacher = summary[0]
    assert float(teacher["cam_pearson_to_teacher_mean"]) == pytest.approx(1.0, abs=1e-3)
    assert (folder(outputs) / "gradcam_localization.png").exists()
    colour = read_rows(folder(outputs) / "color_invariance.csv")
    assert [r["model"] for r in colour][:3] == ["T", "T_colour", "S_I"] and len(colour) == 3 + 2 * 3
    assert {r["teacher"] for r in colour} == {"-", "vgg16", "vgg16-colour"}


class FixedLogits(nn.Module):
    """Returns the same logits for every image (to test the alignment measures by hand)."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_alignment_measures_against_hand_computed_values():
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    same = alignment(FixedLogits([0.0, 4.0]), FixedLogits([0.0, 4.0]), images, "cifar10", temperature=4.0)
    assert same["kl_to_teacher"] == pytest.approx(0.0, abs=1e-7) and same["top1_agreement"] == 100.0
    assert same["prob_cosine"] == pytest.approx(1.0)
    diff = alignment(FixedLogits([4.0, 0.0]), FixedLogits([0.0, 4.0]), images, "cifar10", temperature=4.0)
    p = 1 / (1 + math.exp(-1.0))                    # teacher at T=4: softmax([0, 1]) = (1-p, p)
    expected_kl = p * math.log(p / (1 - p)) + (1 - p) * math.log((1 - p) / p)
    assert diff["kl_to_teacher"] == pytest.approx(expected_kl, rel=1e-5)
    assert diff["top1_agreement"] == 0.0
    q = 1 / (1 + math.exp(-4.0))
    assert diff["prob_cosine"] == pytest.approx(2 * q * (1 - q) / (q * q + (1 - q) ** 2), rel=1e-5)


def test_seed_summary_gives_mean_sample_std_and_gains_paired_by_seed():
    from distillation.summary import seed_summary
    rows = [{"method": "independent", "teacher": "none", "seed": s, "top1_acc": v, "train_seconds": "10"}
            for s, v in ((0, "69"), (1, "70"), (2, "74"))]
    rows += [{"method": "kd", "teacher": "vgg16", "seed": s, "top1_acc": v, "train_seconds": "20"}
             for s, v in ((0, "70"), (1, "72"), (2, "74"))]
    rows.append({"method": "crd", "teacher": "vgg16", "seed": 5, "top1_acc": "65.5", "train_seconds": "30"})
    summary = {r["method"]: r for r in seed_summary(rows)}
    assert list(summary) == ["independent", "kd", "crd"]
    assert summary["kd"]["top1_mean"] == 72.0 and summary["kd"]["top1_std"] == 2.0 and summary["kd"]["seeds"] == 3
    # gains +1, +2, 0 seed by seed: mean 1, sample std 1 (S_I's own spread over seeds is 2.65)
    assert summary["kd"]["gain_mean"] == 1.0 and summary["kd"]["gain_std"] == 1.0
    assert summary["independent"]["gain_mean"] == 0.0 and summary["kd"]["train_seconds_mean"] == 20.0
    assert summary["crd"]["top1_std"] == 0.0 and summary["crd"]["gain_mean"] == ""  # no S_I at seed 5
