"""FSP: "A Gift from Knowledge Distillation" (Yim, Joo, Bae & Kim, CVPR 2017).

The "flow of solution procedure" between two layers is the Gram-like matrix of their
feature maps (``losses.fsp_matrix``, (C1, C2) per image). The student is trained to
reproduce the teacher's FSP matrices (``losses.fsp_loss``), then trained on the task:

* stage 1: the student's feature layers (stem and stages, not the classifier) on the
  FSP loss alone (the CRD authors' re-implementation: 30 epochs, constant lr);
* stage 2: plain cross-entropy from that initialisation.

The pairs follow that re-implementation: consecutive taps (stem, stage 1), (stage 1,
stage 2), (stage 2, stage 3), the larger map pooled to the smaller; the paper pairs
the first and last map *within* each stage. FSP needs equal channel counts in student
and teacher at every tap; :class:`FSP` checks it when built and names both shapes.

Chapter: ``book/05_fsp.ipynb``.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..losses import fsp_loss
from .base import Distiller, output_terms, probe_features

__all__ = ["FSP", "consecutive_pairs"]


def consecutive_pairs(feats) -> list[tuple[Tensor, Tensor]]:
    """[(stem, stage1), (stage1, stage2), (stage2, stage3)] from a ``Features`` record."""
    maps = [feats.stem, *feats.stages]
    return list(zip(maps[:-1], maps[1:]))


class FSP(Distiller):
    """Loss = weight·L_FSP (+ ce_weight·CE). Stage 1 uses ``ce_weight=0`` and
    ``feature_parameters()``; stage 2 is plain CE training of the student."""

    def __init__(self, student: nn.Module, teacher: nn.Module, weight: float = 1.0, ce_weight: float = 0.0):
        super().__init__(student, teacher)
        s_pairs = consecutive_pairs(probe_features(student))
        t_pairs = consecutive_pairs(probe_features(teacher))
        fsp_loss(s_pairs, t_pairs)  # raises with both shapes if channel counts differ
        self.weight, self.ce_weight = weight, ce_weight

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        logits, student_feats = self.student(x, features=True)
        _, teacher_feats = self.teacher_forward(x, features=True)
        losses = {"fsp": self.weight * fsp_loss(consecutive_pairs(student_feats), consecutive_pairs(teacher_feats))}
        losses.update(output_terms(logits, y, ce_weight=self.ce_weight))
        return logits, losses

    def feature_parameters(self) -> list[nn.Parameter]:
        """The student's stem and stages: what stage 1 trains (not the classifier)."""
        student = self.student
        modules = [student.conv1, getattr(student, "bn1", nn.Identity()), student.stages]
        return [p for m in modules for p in m.parameters()]
