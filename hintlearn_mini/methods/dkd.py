"""Decoupled knowledge distillation as a Distiller: a logit-only method of 2022.

Zhao, Cui, Song, Qiu & Liang (CVPR 2022), "Decoupled Knowledge Distillation", in the
form of the official code (``megvii-research/mdistiller``, ``distillers/DKD.py`` and
``configs/cifar100/dkd/*.yaml``):

    Loss = ce_weight · CE(z_s, y) + min(progress / warmup, 1) · DKD(z_s, z_t, y; α, β, T)

with ``losses.dkd_loss``, α = 1, T = 4, CE weight 1, and the DKD term ramped in over the
first 20 of 240 epochs (here the same fraction of the schedule, per step, as ReviewKD's
warm-up). β is set per pair by the official configs (``OFFICIAL_BETAS``: 8 for
resnet32x4 → resnet8x4, 6 for the WRN and VGG pairs, 2 for resnet56 → resnet20 and
resnet110 → resnet32); the constructor's default 8.0 is mdistiller's default config. For
a pair the configs never ran, such as the book's resnet32 → resnet8, ``default_beta`` gives
2.0, the value of the plain CIFAR ResNet pairs: ours, not official.

Like KD it reads only the teacher's logits, so the training loop may serve them from
the teacher-output store.

Chapter: none yet (a chapter 10, "Where the field went", will build it from scratch).
"""
from __future__ import annotations

from torch import Tensor, nn

from ..losses import ce_loss, dkd_loss
from .base import Distiller

__all__ = ["DKD", "OFFICIAL_BETAS", "official_beta", "default_beta"]

# β of each pair in the official CIFAR-100 configs (mdistiller configs/cifar100/dkd/)
OFFICIAL_BETAS = {
    ("resnet32x4", "resnet8x4"): 8.0, ("resnet56", "resnet20"): 2.0, ("resnet110", "resnet32"): 2.0,
    ("wrn_40_2", "wrn_16_2"): 6.0, ("wrn_40_2", "wrn_40_1"): 6.0,
}


def official_beta(teacher: str, student: str) -> float | None:
    """β of the official config of this pair; None for a pair the configs never ran."""
    return OFFICIAL_BETAS.get((teacher, student))


def default_beta(teacher: str, student: str) -> float:
    """The official β where there is one, else 2.0: the plain CIFAR ResNet pairs' value
    (our default for an unpublished pair of plain ResNets, not an official value)."""
    official = official_beta(teacher, student)
    return 2.0 if official is None else official


class DKD(Distiller):
    reads_teacher_logits = True  # the loop may serve the teacher's logits from a store

    def __init__(self, student: nn.Module, teacher: nn.Module, alpha: float = 1.0, beta: float = 8.0,
                 T: float = 4.0, ce_weight: float = 1.0, warmup: float = 20 / 240):
        super().__init__(student, teacher)
        self.alpha, self.beta, self.T, self.ce_weight, self.warmup = alpha, beta, T, ce_weight, warmup
        self.progress = 1.0  # fraction of training done; set by the training loop

    def set_progress(self, fraction: float) -> None:
        self.progress = fraction

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        logits = self.student(x)                             # (B, classes)
        teacher_logits = self.teacher_logits(x, index)       # (B, classes)
        ramp = min(1.0, self.progress / self.warmup) if self.warmup > 0 else 1.0
        return logits, {
            "ce": self.ce_weight * ce_loss(logits, y),
            "dkd": ramp * dkd_loss(logits, teacher_logits, y, self.alpha, self.beta, self.T),
        }
