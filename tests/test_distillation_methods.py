"""Distillation methods: one interface, frozen teachers, CRD's queue, DKD's warm-up, and fit."""

import pytest
import torch

from common.data import load_splits
from common.models import build_model
from common.training import Recipe, fit
from distillation.losses import dkd_loss
from distillation.methods import (CRD, DKD, METHODS, Distiller, build_distiller, crd_queue_size,
                                  hint_regressor)

# Small settings so each method runs in well under a second on a CPU.
SMALL = {"crd": {"num_negatives": 16, "feat_dim": 8}}


def pair(teacher_width: float = 0.25, seed: int = 0):
    """A VGG-11 student and a VGG-16 teacher; a wider teacher makes every stage differ in channels."""
    torch.manual_seed(seed)
    return (build_model("vgg11", num_classes=10, width=0.125),
            build_model("vgg16", num_classes=10, width=teacher_width))


def toy_batch(n: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def snapshot(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module) -> set:
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("teacher_width", [0.125, 0.25])
@pytest.mark.parametrize("stage", range(5))
def test_hint_regressor_maps_student_stage_to_teacher_stage_shape(stage, teacher_width):
    student, teacher = pair(teacher_width)
    x = torch.randn(2, 3, 32, 32)
    s_map = student.forward_with_features(x)[1][stage]
    t_map = teacher.forward_with_features(x)[1][stage]
    regressor = hint_regressor(student.config["stage_channels"][stage][-1],
                               teacher.config["stage_channels"][stage][-1])
    assert regressor(s_map).shape == t_map.shape == (2, t_map.shape[1], 32 >> stage, 32 >> stage)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_one_step_trains_the_student_and_leaves_the_teacher_alone(name):
    student, teacher = pair()
    distiller = build_distiller(name, student, teacher, **SMALL.get(name, {}))
    teacher_before, student_before = snapshot(teacher), snapshot(student)
    distiller.train()
    assert not teacher.training and student.training
    x, y = toy_batch()
    optimizer = torch.optim.SGD(distiller.trainable_parameters(), lr=0.05)
    logits, loss, parts = distiller.forward_train(x, y)
    assert logits.shape == (8, 10) and torch.isfinite(loss)
    assert sum(parts.values()).item() == pytest.approx(loss.item(), rel=1e-5)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert changed(teacher_before, teacher) == set()  # weights and BatchNorm statistics
    assert all(p.grad is None for p in teacher.parameters())
    assert any(".weight" in k for k in changed(student_before, student))
    heads = [p for n, p in distiller.named_parameters() if not n.startswith(("student.", "teacher."))]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads)
    assert int(distiller.steps_done) == 1


@pytest.mark.parametrize("name", sorted(METHODS))
def test_distiller_is_the_student_at_evaluation(name):
    student, teacher = pair()
    distiller = build_distiller(name, student, teacher, **SMALL.get(name, {})).train()
    x, _ = toy_batch(4)
    distiller.eval()
    assert not student.training and not teacher.training
    with torch.no_grad():
        assert torch.equal(distiller(x), student(x))


def test_trainable_parameters_are_student_and_heads_never_teacher():
    student, teacher = pair()
    distiller = build_distiller("hints", student, teacher)
    ids = {id(p) for p in distiller.trainable_parameters()}
    assert {id(p) for p in student.parameters()} <= ids
    assert {id(p) for p in distiller.regressor.parameters()} <= ids
    assert not ids & {id(p) for p in teacher.parameters()}


def test_distiller_leaves_the_shared_teacher_as_it_found_it():
    """The teacher is a cached baseline that Grad-CAM later needs gradients through."""
    student, teacher = pair()
    flags = [p.requires_grad for p in teacher.parameters()]
    distiller = build_distiller("kd", student, teacher)
    assert [p.requires_grad for p in teacher.parameters()] == flags
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    distiller.train()
    distiller(x, y)[1].backward()
    assert all(p.grad is None for p in teacher.parameters())       # still never trained
    assert any(p.grad is not None for p in student.parameters())


def test_registry_builds_by_name_and_rejects_bad_requests():
    student, teacher = pair()
    assert set(METHODS) == {"independent", "label_smoothing", "kd", "dkd", "hints", "crd"}
    assert isinstance(build_distiller("dkd", student, teacher, beta=2.0), DKD)
    assert build_distiller("dkd", student, teacher, beta=2.0).beta == 2.0
    with pytest.raises(ValueError, match="label_smoothing"):
        build_distiller("fitnet", student, teacher)
    for name in ("kd", "dkd", "hints", "crd"):
        with pytest.raises(ValueError, match="teacher"):
            build_distiller(name, student)
    alone = build_distiller("label_smoothing", student)
    assert alone.teacher is None and alone.epsilon == 0.1
    x, y = toy_batch(4)
    assert torch.isfinite(alone(x, y)[1])


def test_crd_queue_takes_the_newest_embeddings_and_wraps():
    student, teacher = pair()
    crd = CRD(student, teacher, num_negatives=16, feat_dim=8).train()
    initial = crd.student_queue.clone()
    assert torch.allclose(initial.norm(dim=1), torch.ones(16))
    for step in range(5):  # 5 batches of 4 into 16 slots: the fifth lands in slots 0..3
        x, y = toy_batch(4, seed=step)
        _, loss, _ = crd.forward_train(x, y)
        assert torch.isfinite(loss)
        if step == 0:
            assert int(crd.queue_ptr) == 4
            assert torch.equal(crd.student_queue[4:], initial[4:])
    assert int(crd.queue_ptr) == 4
    with torch.no_grad():  # BatchNorm in train mode uses batch statistics: same embeddings
        s_emb = crd._embed(crd.student_head, student.forward_with_features(x)[1][-1])
        t_emb = crd._embed(crd.teacher_head, teacher.forward_with_features(x)[1][-1])
    assert torch.allclose(crd.student_queue[:4], s_emb, atol=1e-6)
    assert torch.allclose(crd.teacher_queue[:4], t_emb, atol=1e-6)
    assert not torch.allclose(crd.student_queue[:4], crd.teacher_queue[:4])
    crd.eval()
    frozen = crd.student_queue.clone()
    crd.forward_train(*toy_batch(4, seed=9))
    assert int(crd.queue_ptr) == 4 and torch.equal(crd.student_queue, frozen)


def test_crd_queue_is_capped_at_half_the_training_set():
    assert crd_queue_size(16384, None) == 16384
    assert crd_queue_size(16384, 512) == 256
    assert crd_queue_size(100, 45000) == 100
    student, teacher = pair()
    assert CRD(student, teacher, train_size=64).teacher_queue.shape == (32, 128)


def test_dkd_warms_up_over_the_given_fraction_of_steps():
    student, teacher = pair()
    dkd = DKD(student, teacher, total_steps=24, warmup_fraction=0.25).train()  # 6 warm-up steps
    x, y = toy_batch(4)
    for _ in range(3):
        _, _, parts = dkd.forward_train(x, y)
    assert float(dkd.warmup()) == pytest.approx(0.5)
    assert dkd.progress().item() == pytest.approx(3 / 24)
    with torch.no_grad():
        full = dkd_loss(student(x), teacher(x), y, 1.0, 8.0, 4.0)
    assert parts["dkd"].item() == pytest.approx(0.5 * full.item(), rel=1e-4)
    for _ in range(4):
        dkd.forward_train(x, y)
    assert float(dkd.warmup()) == 1.0
    assert DKD(student, teacher).warmup() == 1.0  # no total_steps: no warm-up


def test_fit_trains_a_distiller_through_the_shared_loop(cifar_root):
    splits = load_splits("cifar10", cifar_root, val_images=64, train_images=128)
    student, teacher = pair()
    distiller = build_distiller("kd", student, teacher, total_steps=4)
    student_before, teacher_before = snapshot(student), snapshot(teacher)
    history = fit(distiller, splits, Recipe(epochs=1, batch_size=32, seed=0), "cpu",
                  loss_fn=Distiller.loss_fn(), params=distiller.trainable_parameters(),
                  progress=False, max_steps=2)
    assert int(distiller.steps_done) == 2
    assert changed(student_before, student) and not changed(teacher_before, teacher)
    assert 0 <= history[0]["val_top1_acc"] <= 100
