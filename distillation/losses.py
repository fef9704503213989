"""Distillation losses as pure functions of logits and embeddings.

Every loss is a scalar averaged over the batch. Low-precision inputs (bf16 under autocast) are
upcast to float32 before the softmaxes; float64 inputs stay float64. The methods in
``distillation.methods`` weight and combine these with the cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Subtracted from the (temperature-scaled) target logit so that it vanishes from a softmax:
# the non-target distribution of DKD, as in mdistiller.
_MASK_LOGIT = 1000.0


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _kl_batchmean(log_q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """KL(p || q) summed over the last dim and averaged over the batch; p, log_q [B,K]."""
    return F.kl_div(log_q, p, reduction="sum") / p.shape[0]


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Hinton et al. (2015) logit matching: ``T^2 * KL(softmax(t/T) || softmax(s/T))``.

    Logits [B,C]; the KL divergence (nats) is summed over classes and averaged over the batch.
    The ``T^2`` factor keeps gradient magnitudes independent of the temperature.
    """
    log_q = F.log_softmax(_at_least_fp32(student_logits) / temperature, dim=1)
    p = F.softmax(_at_least_fp32(teacher_logits) / temperature, dim=1)
    return temperature ** 2 * _kl_batchmean(log_q, p)


def tckd_nckd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
              temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The two parts of Decoupled KD (Zhao et al. 2022), each times ``T^2``, batch means.

    Logits [B,C], target [B] class indices. TCKD is the KL divergence between the teacher's and
    the student's binary (target, non-target) distributions; NCKD is the KL divergence between
    their distributions over the non-target classes, renormalised among those classes (the
    target logit is pushed down by 1000 after dividing by ``T``, as in mdistiller).
    """
    s = _at_least_fp32(student_logits) / temperature
    t = _at_least_fp32(teacher_logits) / temperature
    gt = F.one_hot(target, s.shape[1]).to(s.dtype)
    p_s, p_t = F.softmax(s, dim=1), F.softmax(t, dim=1)
    binary_s = torch.stack([(p_s * gt).sum(1), (p_s * (1 - gt)).sum(1)], dim=1)
    binary_t = torch.stack([(p_t * gt).sum(1), (p_t * (1 - gt)).sum(1)], dim=1)
    tckd = _kl_batchmean(binary_s.clamp_min(torch.finfo(s.dtype).tiny).log(), binary_t)
    nckd = _kl_batchmean(F.log_softmax(s - _MASK_LOGIT * gt, dim=1),
                         F.softmax(t - _MASK_LOGIT * gt, dim=1))
    return temperature ** 2 * tckd, temperature ** 2 * nckd


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
             alpha: float, beta: float, temperature: float) -> torch.Tensor:
    """Decoupled KD: ``alpha * TCKD + beta * NCKD`` (see ``tckd_nckd``), without warm-up.

    Logits [B,C], target [B] class indices; a scalar in nats.
    """
    tckd, nckd = tckd_nckd(student_logits, teacher_logits, target, temperature)
    return alpha * tckd + beta * nckd


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """InfoNCE: cross-entropy of picking the positive among it and K shared negatives.

    anchor [B,D], positive [B,D], negatives [K,D]; all three are L2-normalised here (inputs
    need not be). Row b scores ``cos(anchor_b, positive_b)`` at index 0 and
    ``cos(anchor_b, negatives_k)`` at 1..K, each divided by ``temperature``; the loss (nats)
    is the batch mean of ``-log softmax(scores)[0]``. Equal scores give ``log(1 + K)``.
    """
    anchor, positive, negatives = (F.normalize(_at_least_fp32(v), dim=1)
                                   for v in (anchor, positive, negatives))
    scores = torch.cat([(anchor * positive).sum(1, keepdim=True), anchor @ negatives.T], dim=1)
    zeros = torch.zeros(len(anchor), dtype=torch.long, device=anchor.device)
    return F.cross_entropy(scores / temperature, zeros)
