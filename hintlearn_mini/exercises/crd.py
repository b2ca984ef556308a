"""The checks of chapter 6, ``book/06_crd.ipynb``: InfoNCE, the contrastive objective
behind CRD (Tian, Krishnan & Isola 2020, "Contrastive representation distillation",
§3), in batch and against a queue of negatives (He et al. 2020, MoCo)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checking import Wrong, check, scalar_answer

__all__ = ["check_masked_info_nce", "check_queue_info_nce"]


# ------------------------------------------------------------------ ex-info-nce
def _masked_info_nce(student_embed, teacher_embed, labels, tau, fill=float("-inf"), own=False):
    """The reference of ``ex-info-nce``: in-batch InfoNCE, student → teacher, of (B, d)
    embeddings, where the other images of the same class are no negatives (their logits
    masked out); ``fill`` and ``own`` give the typical mistakes (masking with 0, masking
    the positive)."""
    logits = student_embed @ teacher_embed.t() / tau
    same = labels[:, None] == labels[None, :]
    if not own:
        same = same & ~torch.eye(len(labels), dtype=torch.bool)
    return F.cross_entropy(logits.masked_fill(same, fill), torch.arange(len(logits)))


@check
def check_masked_info_nce(fn):
    """Exercise ``ex-info-nce``: ``fn(student_embed, teacher_embed, labels, tau)`` -> the
    student → teacher in-batch InfoNCE (Tian et al. 2020's in-batch form) in which another
    image of the same class is not a negative: its logit is removed from the softmax.
    Shapes (B, d), (B, d) unit rows, (B,) labels."""
    g = torch.Generator().manual_seed(10)
    s = F.normalize(torch.randn(8, 6, generator=g), dim=1)
    t = F.normalize(s + 0.5 * torch.randn(8, 6, generator=g), dim=1)
    labels, tau = torch.tensor([0, 1, 0, 2, 1, 3, 0, 2]), 0.2
    expected = _masked_info_nce(s, t, labels, tau)
    answer = scalar_answer(fn, (s, t, labels, tau), " (the mean over the batch)")
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if close(expected):
        return f"correct: {answer.item():.4f}."
    mistakes = [(_masked_info_nce(s, t, torch.arange(8), tau),
                 "nothing is masked: the other images of the same class still act as negatives"),
                (_masked_info_nce(s, t, labels, tau, fill=0.0),
                 "a masked logit set to 0 still counts in the softmax (exp 0 = 1): set it to −inf"),
                (_masked_info_nce(s, t, labels, 1.0), "the similarities are not divided by tau")]
    for other, hint in mistakes:
        if close(other):
            raise Wrong(hint)
    if not torch.isfinite(answer):
        raise Wrong("the loss is not finite: you masked the positive (the diagonal) too; "
                    "mask only the *other* images of the same class")
    raise Wrong(f"expected {expected.item():.4f}, got {answer.item():.4f}: one direction, "
                "student rows against teacher columns, the positives on the diagonal")


# ------------------------------------------------------------------ ex-queue-nce
def _queue_info_nce(student_embed, teacher_embed, queue, tau):
    """The reference of ``ex-queue-nce``: each student embedding against its own teacher
    embedding (the positive) and every embedding of the queue (the negatives)."""
    positives = (student_embed * teacher_embed).sum(1, keepdim=True)  # (B, 1)
    negatives = student_embed @ queue.t()                              # (B, Q)
    logits = torch.cat([positives, negatives], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


@check
def check_queue_info_nce(fn):
    """Exercise ``ex-queue-nce``: ``fn(student_embed, teacher_embed, queue, tau)`` -> InfoNCE
    of each student embedding against its teacher embedding and a queue of Q past teacher
    embeddings (MoCo's memory; CRD's bank plays the same part): (B, d), (B, d), (Q, d)."""
    g = torch.Generator().manual_seed(3)
    s = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    t = F.normalize(s + 0.3 * torch.randn(6, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    tau = 0.2
    expected = _queue_info_nce(s, t, queue, tau)
    answer = scalar_answer(fn, (s, t, queue, tau), " (the mean over the batch)")
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if close(expected):
        return f"correct: {answer.item():.4f}."
    if close(_queue_info_nce(s, t, queue, 1.0)):
        raise Wrong("the similarities are not divided by the temperature tau")
    if close(F.cross_entropy(s @ torch.cat([t, queue]).t() / tau, torch.arange(6))):
        raise Wrong("the other images of the batch are negatives too in your loss; "
                    "here the negatives are the queue only")
    if close(_queue_info_nce(s, t, queue[:0], tau)):
        raise Wrong("the queue is missing: its Q embeddings are the negatives")
    raise Wrong(f"expected {expected.item():.4f}, got {answer.item():.4f}: the positive "
                "is column 0 of the (B, 1 + Q) logits")
