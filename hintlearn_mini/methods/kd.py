"""Hinton knowledge distillation as a Distiller: the output-only baseline of the book.

Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".
Loss = ce_weight · CE(z_s, y) + kd_weight · KD_T(z_s, z_t), with the CRD benchmark's
defaults γ = 0.1, α = 0.9, T = 4 (RepDistiller ``scripts/run_cifar_distill.sh``).

Chapter: ``book/02_knowledge_distillation.ipynb``.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..losses import ce_loss, kd_loss
from .base import Distiller


class KD(Distiller):
    reads_teacher_logits = True  # the loop may serve the teacher's logits from a store

    def __init__(self, student: nn.Module, teacher: nn.Module, T: float = 4.0,
                 ce_weight: float = 0.1, kd_weight: float = 0.9):
        super().__init__(student, teacher)
        self.T, self.ce_weight, self.kd_weight = T, ce_weight, kd_weight

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        logits = self.student(x)  # (B, classes)
        teacher_logits = self.teacher_logits(x, index)  # (B, classes)
        return logits, {
            "ce": self.ce_weight * ce_loss(logits, y),
            "kd": self.kd_weight * kd_loss(logits, teacher_logits, self.T),
        }
