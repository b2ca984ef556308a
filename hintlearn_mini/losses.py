"""Every loss of the book as a pure function of tensors.

Nothing here knows about modules, data or training: each function takes tensors and
returns a scalar, so it can be shown, tested against hand-computed values and reused.
The chapter that builds each loss from scratch is named in its docstring.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["kd_loss"]


def _check_same_shape(what: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: student and teacher shapes differ: "
                         f"{tuple(a.shape)} vs {tuple(b.shape)}; they must be equal.")


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, T: float = 4.0) -> Tensor:
    """Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    KD_T = T² · (1/B) · Σ_b KL( softmax(z_t[b]/T) ‖ softmax(z_s[b]/T) )

    The soft targets ``softmax(z_t/T)`` are compared with the student's softened
    distribution; the KL divergence is summed over classes and averaged over the batch
    (``batchmean``, as the official code of CRD, mdistiller and ReviewKD), then scaled
    by T² so that its gradients keep their size as T grows (the gradient of the soft
    term scales as 1/T²).

    Shapes: student_logits, teacher_logits (B, classes) -> scalar.
    Chapter: ``book/02_knowledge_distillation.ipynb``.
    """
    _check_same_shape("kd_loss", student_logits, teacher_logits)
    if T <= 0:
        raise ValueError(f"kd_loss: the temperature T must be positive, got {T}")
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * T * T
