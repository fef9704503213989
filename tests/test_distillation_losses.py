"""Distillation losses against hand arithmetic: KD, DKD (TCKD/NCKD) and InfoNCE."""

import math

import pytest
import torch

from distillation.losses import dkd_loss, info_nce, kd_loss, tckd_nckd


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


def test_kd_loss_two_classes_by_hand():
    # T=2: student [0,1]/2, teacher [1,0]/2; q = (1, e^.5)/(1+e^.5), p = (e^.5, 1)/(1+e^.5).
    z = 1 + math.exp(0.5)
    p = [math.exp(0.5) / z, 1 / z]
    q = [1 / z, math.exp(0.5) / z]
    expected = 4 * (p[0] * math.log(p[0] / q[0]) + p[1] * math.log(p[1] / q[1]))
    got = kd_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]), temperature=2.0)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.2  # not a degenerate case


def test_kd_loss_three_classes_is_a_batch_mean():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    teacher = torch.tensor([[3.0, 2.0, 1.0], [0.5, -1.0, 2.0]])  # second row agrees: KL 0
    e1, e2, e3 = math.exp(1), math.exp(2), math.exp(3)
    z = e1 + e2 + e3
    p, q = [e3 / z, e2 / z, e1 / z], [e1 / z, e2 / z, e3 / z]
    row0 = sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    assert kd_loss(student, teacher, 1.0).item() == pytest.approx(row0 / 2, rel=1e-5)


def test_kd_loss_is_zero_for_agreement_and_grows_with_disagreement():
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(6, 10, generator=gen)
    direction = torch.randn(6, 10, generator=gen)
    assert kd_loss(teacher.clone(), teacher, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    losses = [kd_loss(teacher + k * direction, teacher, 4.0).item() for k in (0.5, 1, 2, 4)]
    assert all(a < b for a, b in zip(losses, losses[1:]))


def test_kd_loss_carries_the_t_squared_factor():
    # softmax(T*s / T) = softmax(s): scaling logits by T leaves the KL as at T=1, times T^2.
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    for temperature in (2.0, 4.0):
        scaled = kd_loss(s * temperature, t * temperature, temperature)
        assert scaled.item() == pytest.approx(temperature ** 2 * kd_loss(s, t, 1.0).item(), rel=1e-5)


def test_tckd_vanishes_when_only_the_non_target_classes_differ():
    teacher = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    student = torch.tensor([[2.0, -1.0, 0.0, 1.0]])  # non-targets permuted: same target prob
    tckd, nckd = tckd_nckd(student, teacher, torch.tensor([0]), temperature=1.0)
    assert tckd.item() == pytest.approx(0.0, abs=1e-6)
    assert nckd.item() > 0.1


def test_nckd_vanishes_when_only_the_target_logit_differs():
    teacher = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    student = torch.tensor([[5.0, 1.0, 0.0, -1.0]])  # same non-target logits, target raised
    tckd, nckd = tckd_nckd(student, teacher, torch.tensor([0]), temperature=1.0)
    assert nckd.item() == pytest.approx(0.0, abs=1e-6)
    assert tckd.item() > 0.1


def test_dkd_parts_by_hand():
    # Three classes, target 0, T=2 (so both parts carry a factor 4).
    s_vals, t_vals, target, temperature = [0.0, 1.0, 2.0], [2.0, 1.0, -1.0], 0, 2.0
    p_s = softmax([v / temperature for v in s_vals])
    p_t = softmax([v / temperature for v in t_vals])
    tckd = 4 * kl([p_t[target], 1 - p_t[target]], [p_s[target], 1 - p_s[target]])
    nt_s = softmax([s_vals[1] / temperature, s_vals[2] / temperature])
    nt_t = softmax([t_vals[1] / temperature, t_vals[2] / temperature])
    nckd = 4 * kl(nt_t, nt_s)
    got_t, got_n = tckd_nckd(torch.tensor([s_vals]), torch.tensor([t_vals]),
                             torch.tensor([target]), temperature)
    assert got_t.item() == pytest.approx(tckd, rel=1e-5)
    assert got_n.item() == pytest.approx(nckd, rel=1e-5)
    assert min(tckd, nckd) > 0.1  # both parts are exercised
    total = dkd_loss(torch.tensor([s_vals]), torch.tensor([t_vals]), torch.tensor([target]),
                     alpha=1.0, beta=8.0, temperature=temperature)
    assert total.item() == pytest.approx(tckd + 8 * nckd, rel=1e-5)


def test_dkd_is_alpha_tckd_plus_beta_nckd_and_kd_decomposes():
    gen = torch.Generator().manual_seed(2)
    s, t = torch.randn(1, 7, generator=gen), torch.randn(1, 7, generator=gen)
    y = torch.tensor([3])
    tckd, nckd = tckd_nckd(s, t, y, 4.0)
    total = dkd_loss(s, t, y, alpha=0.5, beta=3.0, temperature=4.0)
    assert total.item() == pytest.approx(0.5 * tckd.item() + 3.0 * nckd.item(), rel=1e-5)
    # Zhao et al. (2022), Eq. 7: KD = TCKD + (1 - p_t(target)) * NCKD.
    p_target = torch.softmax(t / 4.0, dim=1)[0, 3].item()
    kd = kd_loss(s, t, 4.0).item()
    assert kd == pytest.approx(tckd.item() + (1 - p_target) * nckd.item(), rel=1e-4)


def test_info_nce_is_log_one_plus_k_for_equal_similarities():
    eye = torch.eye(8)
    anchor, positive, negatives = eye[:1], eye[1:2], eye[2:7]  # all cosines 0, K = 5
    assert info_nce(anchor, positive, negatives, 0.07).item() == pytest.approx(math.log(6), rel=1e-5)
    same = positive.repeat(5, 1)  # negatives identical to the positive: cosines all 1
    assert info_nce(eye[1:2], positive, same, 0.5).item() == pytest.approx(math.log(6), rel=1e-5)


def test_info_nce_by_hand_and_normalises_its_inputs():
    eye = torch.eye(4)
    # cos(positive) = 1, cos(negative) = 0, T = 1, K = 1: -log(e / (e + 1)) = log(1 + e^-1).
    got = info_nce(3 * eye[:1], 0.5 * eye[:1], 7 * eye[1:2], 1.0)
    assert got.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-5)


def test_info_nce_is_small_when_the_positive_dominates():
    gen = torch.Generator().manual_seed(3)
    anchor = torch.randn(4, 16, generator=gen)
    negatives = torch.randn(64, 16, generator=gen)
    aligned = info_nce(anchor, anchor + 0.01 * torch.randn(4, 16, generator=gen), negatives, 0.07)
    unrelated = info_nce(anchor, torch.randn(4, 16, generator=gen), negatives, 0.07)
    assert aligned.item() < 0.05 < math.log(65) / 2 < unrelated.item()
