"""Attention Transfer (Zagoruyko & Komodakis, ICLR 2017).

A feature map's spatial attention is the channel mean of its squared activations,
flattened and L2-normalised per image (``losses.attention_map``); the student is
trained to reproduce the teacher's attention at several stages:

    L = ce_weight·CE + kd_weight·KD_T + beta · Σ_stages L_AT(stage)

with ``losses.at_loss`` the mean squared difference of the two maps. Defaults follow
the authors' code and the CRD benchmark: p = 2, β = 1000, all three stage outputs
(after the ReLU for ResNets), no KD. The paper's equation uses β/2 and a non-squared
norm summed over the batch: a different scale for the same idea (see the chapter).
If two maps differ in size, the larger is average-pooled to the smaller; channel
counts may differ (the map averages them away).

Chapter: ``book/04_attention_transfer.ipynb``.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..losses import at_loss
from .base import Distiller, check_stage, output_terms, probe_features

__all__ = ["AttentionTransfer"]


class AttentionTransfer(Distiller):
    def __init__(self, student: nn.Module, teacher: nn.Module, stages=(1, 2, 3), beta: float = 1000.0,
                 p: int = 2, ce_weight: float = 1.0, kd_weight: float = 0.0, T: float = 4.0):
        super().__init__(student, teacher)
        s_feats, t_feats = probe_features(student), probe_features(teacher)
        for stage in stages:
            check_stage("AttentionTransfer", stage, s_feats, t_feats)
            at_loss(s_feats.stages[stage - 1], t_feats.stages[stage - 1])  # fails early on shapes
        self.stages, self.beta, self.p = tuple(stages), beta, p
        self.ce_weight, self.kd_weight, self.T = ce_weight, kd_weight, T

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        logits, student_feats = self.student(x, features=True)
        teacher_logits, teacher_feats = self.teacher_forward(x, features=True)
        at = sum(at_loss(student_feats.stages[i - 1], teacher_feats.stages[i - 1], self.p)
                 for i in self.stages)
        losses = {"at": self.beta * at}
        losses.update(output_terms(logits, y, teacher_logits, self.ce_weight, self.kd_weight, self.T))
        return logits, losses
