"""One rule for every cache (common.cache): a model, a resume state or a results file is reused only
when its key matches all that made it -- settings, data split and files, the weights it starts
from or learns from -- and one line says why it is not. Each test names the item of the
incremental-run issue it guards; on the code before that issue each of them fails."""

import dataclasses
import shutil

import pytest
import torch

import common.training as training
from common.baselines import get_baseline
from common.cache import weights_sha256
from common.cli import RunContext
from common.models import build_model
from common.profiles import PROFILES
from distillation.study import get_colour_teacher, get_student


def context(cifar_root, **profile_changes) -> RunContext:
    profile = dataclasses.replace(PROFILES["smoke"], **profile_changes)
    return RunContext(profile=profile, dataset="cifar10", data_dir=cifar_root, device=torch.device("cpu"),
                      progress=False)


def a_teacher(seed: int):
    """A VGG-11 standing in for a trained VGG-16 teacher (what matters is its weights)."""
    torch.manual_seed(seed)
    return build_model("vgg11", 10, 0.125).eval(), {"name": "vgg16_seed0", "architecture": "vgg16"}


def interrupted_after_first_epoch(monkeypatch):
    """Make ``fit`` stop (as Ctrl-C would) right after it saved the state of epoch 1."""
    save = training.save_state

    def save_then_stop(path, key, model, optimizer, epoch, *rest):
        save(path, key, model, optimizer, epoch, *rest)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_state", save_then_stop)


def test_resuming_a_student_from_another_teacher_starts_over_and_keeps_the_new_teacher(
        cifar_root, isolated_outputs, monkeypatch, capsys):
    """Item 1: the resume key held the recipe, name and parameter count only, and a distiller's
    state holds its teacher: a student stopped under teacher A and rerun under teacher B resumed,
    and loaded A's weights into B."""
    ctx = context(cifar_root, student_epochs=2)
    teacher_a, meta = a_teacher(1)
    with monkeypatch.context() as patch:
        interrupted_after_first_epoch(patch)
        with pytest.raises(KeyboardInterrupt):
            get_student(ctx, "kd", teacher_a, meta)
    teacher_b, _ = a_teacher(2)
    b_before = weights_sha256(teacher_b)
    capsys.readouterr()
    get_student(ctx, "kd", teacher_b, meta)
    out = capsys.readouterr().out
    assert "continuing after epoch" not in out and "its teacher changed; training from the start" in out
    assert weights_sha256(teacher_b) == b_before


def test_a_retrained_teacher_retrains_the_colour_teacher_and_the_students(cifar_root, isolated_outputs, capsys):
    """Items 2 and 5: the colour teacher was checked against its recipe only, and students were
    keyed by the teacher's name and training time (one-second resolution): a retrained teacher
    left both in place. Both are keyed by the teacher's weights now."""
    ctx = context(cifar_root)
    teacher_a, meta = a_teacher(1)
    get_colour_teacher(ctx, teacher_a, meta)
    get_student(ctx, "kd", teacher_a, meta)
    capsys.readouterr()
    get_colour_teacher(ctx, teacher_a, meta)
    get_student(ctx, "kd", teacher_a, meta)
    assert "retraining" not in capsys.readouterr().out           # the same teacher: both reused
    teacher_b, _ = a_teacher(2)                                    # same name, same metadata
    _, colour_meta = get_colour_teacher(ctx, teacher_b, meta)
    _, student_meta = get_student(ctx, "kd", teacher_b, meta)
    out = capsys.readouterr().out
    assert "[cache] vgg16_colour_seed0: its base teacher changed; retraining" in out
    assert "[cache] student_kd_vgg16_seed0: its teacher changed; retraining" in out
    assert colour_meta["finetuned_from"] == weights_sha256(teacher_b)
    assert student_meta["cache_key"]["inputs"]["teacher"] == weights_sha256(teacher_b)


def test_a_changed_split_retrains_and_reports_the_new_split(cifar_root, isolated_outputs, capsys):
    """Item 3: the data split was not in the key, so a changed test split reused the model and
    baselines.csv printed the accuracy measured on the old split."""
    _, meta = get_baseline(context(cifar_root), "vgg11")
    capsys.readouterr()
    model, meta = get_baseline(context(cifar_root, test_images=200), "vgg11")
    assert "data split changed (test_images 256 -> 200); retraining" in capsys.readouterr().out
    ctx = context(cifar_root, test_images=200)
    assert meta["test_top1_acc"] == ctx.evaluate(model, "test")["top1_acc"]
    assert len(ctx.splits.test_labels) == 200


def test_changed_data_files_retrain(cifar_root, isolated_outputs, tmp_path, capsys):
    """The data's sha256 is part of the key: another copy of the dataset is another model."""
    get_baseline(context(cifar_root), "vgg11")
    copy = tmp_path / "data"
    shutil.copytree(cifar_root, copy)
    with open(copy / "cifar-10-batches-py" / "batches.meta", "ab"):
        pass                                                       # unread file: no change
    capsys.readouterr()
    get_baseline(context(copy), "vgg11")
    assert "retraining" not in capsys.readouterr().out
    batch = copy / "cifar-10-batches-py" / "test_batch"
    data = bytearray(batch.read_bytes())
    data[len(data) // 2] ^= 1                                      # one bit of one pixel
    batch.write_bytes(bytes(data))
    get_baseline(context(copy), "vgg11")
    assert "the data files changed; retraining" in capsys.readouterr().out


def test_a_model_of_other_code_is_reused_with_a_line_unless_force_retrain(cifar_root, isolated_outputs,
                                                                          monkeypatch, capsys):
    """Code is in the key; a checkpoint made by other code is reused and says so (hours of training
    for edits that mostly change nothing trained), and FORCE_RETRAIN=1 retrains it."""
    import common.checkpoints
    import common.cli

    get_baseline(context(cifar_root), "vgg11")
    monkeypatch.setattr(common.cli, "code_sha256", lambda module: "other code")
    monkeypatch.setattr(common.checkpoints, "_ANNOUNCED", set())
    capsys.readouterr()
    get_baseline(context(cifar_root), "vgg11")
    assert "[cache] vgg11_seed0: made by other code than today's; reused (FORCE_RETRAIN=1 retrains it)" \
        in capsys.readouterr().out
    monkeypatch.setenv("FORCE_RETRAIN", "1")
    get_baseline(context(cifar_root), "vgg11")
    assert "vgg11_seed0: made by other code than today's; retraining" in capsys.readouterr().out


def test_an_interrupted_finetune_resumes_bit_identically(cifar_root, isolated_outputs, monkeypatch, capsys):
    """Item 7: only baselines and students resumed; a pruning fine-tune (as QAT and the pipelines'
    fine-tunes) started over. Now it continues after its last epoch and ends bit-identical."""
    from pruning.study import prune_unstructured_and_finetune

    ctx = context(cifar_root)
    base, _ = get_baseline(ctx, "vgg11")
    ratios = {name: 0.5 for name, _ in base.named_modules() if isinstance(_, (torch.nn.Conv2d, torch.nn.Linear))}
    whole, whole_metrics = prune_unstructured_and_finetune(base, ctx, ratios, epochs=3, desc="ft-whole")
    with monkeypatch.context() as patch:
        interrupted_after_first_epoch(patch)
        with pytest.raises(KeyboardInterrupt):
            prune_unstructured_and_finetune(base, ctx, ratios, epochs=3, desc="ft-cut")
    assert ctx.resume_file("ft-cut").exists()
    capsys.readouterr()
    cut, cut_metrics = prune_unstructured_and_finetune(base, ctx, ratios, epochs=3, desc="ft-cut")
    out = capsys.readouterr().out
    assert "[resume] ft-cut: continuing after epoch 1/3" in out and "[ft-cut] epoch=1 " not in out
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), cut.state_dict().values()))
    timeless = lambda m: {**m, "history": [{k: v for k, v in h.items() if k != "seconds"} for h in m["history"]]}  # noqa: E731
    assert timeless(whole_metrics) == timeless(cut_metrics)
    assert not ctx.resume_file("ft-cut").exists()                 # the state goes with the training


def test_the_sweep_of_another_baseline_is_swept_again_in_memory_and_its_file_left_alone(
        cifar_root, isolated_outputs, capsys):
    """Item 4: the pruning rule's cache rewrote the sensitivity stage's CSV from inside another
    stage, leaving that stage's figure and record stale. A stage writes only its own outputs."""
    from pruning.study import UNSTRUCTURED, ratio_rule, run_sensitivity

    ctx = context(cifar_root)
    base, _ = get_baseline(ctx, "vgg11")
    run_sensitivity(ctx, UNSTRUCTURED)
    path = ctx.results_dir("pruning") / "unstructured_sensitivity.csv"
    written = path.read_bytes()
    capsys.readouterr()
    ratio_rule(ctx, UNSTRUCTURED, base)
    assert "reusing" in capsys.readouterr().out
    other, _ = a_teacher(3)
    ratio_rule(ctx, UNSTRUCTURED, other)
    assert "its base model changed; sweeping again in memory" in capsys.readouterr().out
    assert path.read_bytes() == written
