"""Contrastive representation distillation (Tian et al., ICLR 2020) with a queue of negatives.

Student and teacher embeddings of the same image are pulled together and pushed away from the
embeddings of other images. CRD draws its negatives from a memory bank indexed by dataset sample
index (one slot per training image, updated with momentum 0.5 when that image is seen) and
scores them with an NCE loss. ``fit`` does not pass sample indices, so this implementation keeps
a FIFO queue per modality instead (as MoCo does): the detached embeddings of the most recent
batches, the newest replacing the oldest, and scores them with InfoNCE (softmax over the positive
and the negatives). CRD's momentum has nothing to average with in a queue -- a slot belongs to no
particular image -- so there is no momentum argument. Until the queue has been filled once its
slots hold random unit vectors (easy negatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillation.losses import info_nce
from distillation.methods.base import Distiller, LossParts, stage_channels


def crd_queue_size(num_negatives: int, train_size: int | None = None) -> int:
    """Queue length actually used: ``num_negatives``, at most half the training set.

    A queue no longer than half an epoch keeps the negatives from recent (not stale) heads, and
    under per-epoch reshuffling an image meets its own previous embedding among its negatives
    with probability at most K^2 / (2 N^2) <= 1/8 (K queue, N training images; the full
    CIFAR-100 run, 16384 of 45000, gives 6.6%). CRD itself samples K < N negatives.
    """
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be at least 1, got {num_negatives}")
    if train_size is None:
        return num_negatives
    return max(1, min(num_negatives, train_size // 2))


def _random_unit_rows(rows: int, dim: int) -> torch.Tensor:
    return F.normalize(torch.randn(rows, dim), dim=1)


class CRD(Distiller):
    """``ce_weight * CE + crd_weight * (InfoNCE_s + InfoNCE_t) / 2`` over L2-normalised embeddings.

    Embeddings [B,feat_dim] are linear projections of each network's penultimate features, the
    stage-4 map max-pooled to 1x1 ([B,C_4], the classifier's input), then L2-normalised. Both
    heads are trained (the teacher's too, as in CRD). InfoNCE_s takes the student embedding as
    anchor, the teacher embedding of the same image as positive and the teacher queue as
    negatives; InfoNCE_t is the mirror image. After each training forward both queues receive
    the batch's detached embeddings (``queue_ptr`` marks the oldest slot).

    Defaults follow RepDistiller's CIFAR-100 CRD (feat_dim 128, nce_k 16384, nce_t 0.07,
    ``-r 1 -a 0 -b 0.8``). ``train_size`` (training images) caps the queue, see
    ``crd_queue_size``; ``self.num_negatives`` is the length used.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None,
                 total_steps: int | None = None, *, feat_dim: int = 128,
                 num_negatives: int = 16384, nce_temperature: float = 0.07,
                 crd_weight: float = 0.8, ce_weight: float = 1.0, train_size: int | None = None):
        super().__init__(student, teacher, total_steps)
        self.num_negatives = crd_queue_size(num_negatives, train_size)
        self.nce_temperature = nce_temperature
        self.crd_weight = crd_weight
        self.ce_weight = ce_weight
        self.student_head = nn.Linear(stage_channels(student, -1), feat_dim)
        self.teacher_head = nn.Linear(stage_channels(teacher, -1), feat_dim)
        self.register_buffer("student_queue", _random_unit_rows(self.num_negatives, feat_dim))
        self.register_buffer("teacher_queue", _random_unit_rows(self.num_negatives, feat_dim))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @staticmethod
    def _embed(head: nn.Linear, last_stage: torch.Tensor) -> torch.Tensor:
        """Stage-4 map [B,C_4,H,W] -> L2-normalised embedding [B,feat_dim]."""
        return F.normalize(head(last_stage.amax(dim=(2, 3))), dim=1)

    @torch.no_grad()
    def _enqueue(self, student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> None:
        """Write the newest embeddings [B,feat_dim] over the oldest queue slots."""
        n = min(len(student_emb), self.num_negatives)
        slots = (self.queue_ptr + torch.arange(n, device=self.queue_ptr.device)) % self.num_negatives
        self.student_queue.index_copy_(0, slots, student_emb[-n:].to(self.student_queue.dtype))
        self.teacher_queue.index_copy_(0, slots, teacher_emb[-n:].to(self.teacher_queue.dtype))
        self.queue_ptr.copy_((self.queue_ptr + n) % self.num_negatives)

    def compute_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossParts]:
        """Logits [B,C], the weighted loss and its parts {"ce", "crd"}; enqueues when training."""
        logits, features = self.student.forward_with_features(x)
        _, teacher_features = self.teacher_outputs(x)
        student_emb = self._embed(self.student_head, features[-1])
        teacher_emb = self._embed(self.teacher_head, teacher_features[-1])
        ce = self.ce_weight * F.cross_entropy(logits, y)
        contrast = 0.5 * (info_nce(student_emb, teacher_emb, self.teacher_queue.clone(),
                                   self.nce_temperature)
                          + info_nce(teacher_emb, student_emb, self.student_queue.clone(),
                                     self.nce_temperature))
        crd = self.crd_weight * contrast
        if self.training:
            self._enqueue(student_emb.detach(), teacher_emb.detach())
        return logits, ce + crd, {"ce": ce.detach(), "crd": crd.detach()}
