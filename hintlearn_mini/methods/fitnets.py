"""FitNets: hints for thin deep nets (Romero et al., ICLR 2015).

The student's *guided layer* is trained to predict the teacher's *hint layer* through a
small convolutional regressor r, with the hint loss (``losses.hint_loss``):

    L_hint = mean over all elements of (r(v_guided) − u_hint)²

The paper trains in **two stages**: (1) the student up to its guided layer, plus the
regressor, on the hint loss alone, at a constant learning rate (RepDistiller's
``helper/pretrain.py``; ``profiles.stage_one_kwargs``); (2) the whole student with
knowledge distillation.
The CRD benchmark (RepDistiller) and mdistiller instead train **one stage**,
CE + β·L_hint with β = 100, for the whole schedule; their "FitNet" numbers are that
variant. :class:`FitNets` computes both: ``ce_weight=0`` (and ``guided_parameters``)
gives stage 1, the defaults give the one-stage "CE + β·hint" variant.

Defaults follow the official code: the hint is the output of the middle stage
(RepDistiller ``--hint_layer 2``, after the ReLU), the regressor is RepDistiller's
``ConvReg`` (a convolution sized from the two shapes, then BatchNorm and ReLU).

Chapter: ``book/03_fitnets.ipynb``.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..losses import hint_loss
from .base import Distiller, check_stage, output_terms, probe_features

__all__ = ["ConvRegressor", "FitNets"]


class ConvRegressor(nn.Sequential):
    """Maps a (C_s, H_s, W_s) map to the hint's (C_t, H_t, W_t), as RepDistiller's ConvReg:

    * H_s = 2·H_t: 3×3 convolution with stride 2;
    * 2·H_s = H_t: 4×4 transposed convolution with stride 2;
    * H_s ≥ H_t: convolution of kernel (1 + H_s − H_t) × (1 + W_s − W_t) (1×1 if equal);

    then BatchNorm and (by default) ReLU, the non-linearity of a post-ReLU hint.
    """

    def __init__(self, student_shape, teacher_shape, relu: bool = True):
        (cs, hs, ws), (ct, ht, wt) = student_shape, teacher_shape
        if hs == 2 * ht:
            conv = nn.Conv2d(cs, ct, 3, stride=2, padding=1)
        elif 2 * hs == ht:
            conv = nn.ConvTranspose2d(cs, ct, 4, stride=2, padding=1)
        elif hs >= ht and ws >= wt:
            conv = nn.Conv2d(cs, ct, (1 + hs - ht, 1 + ws - wt))
        else:
            raise ValueError(f"no regressor maps the student's {tuple(student_shape)} to the hint's "
                             f"{tuple(teacher_shape)}: choose a guided layer at least as large as the hint.")
        super().__init__(conv, nn.BatchNorm2d(ct), *([nn.ReLU()] if relu else []))


class FitNets(Distiller):
    """Loss = ce_weight·CE + kd_weight·KD_T + beta·L_hint(regressor(student stage), teacher stage).

    ``stage`` numbers the stage outputs from 1 (2 = the middle stage of a CIFAR ResNet).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, stage: int = 2, beta: float = 100.0,
                 ce_weight: float = 1.0, kd_weight: float = 0.0, T: float = 4.0):
        super().__init__(student, teacher)
        s_feats, t_feats = probe_features(student), probe_features(teacher)
        check_stage("FitNets", stage, s_feats, t_feats)
        self.stage, self.beta, self.ce_weight, self.kd_weight, self.T = stage, beta, ce_weight, kd_weight, T
        self.regressor = ConvRegressor(s_feats.stages[stage - 1].shape[1:], t_feats.stages[stage - 1].shape[1:])

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        logits, student_feats = self.student(x, features=True)
        teacher_logits, teacher_feats = self.teacher_forward(x, features=True)
        guided = self.regressor(student_feats.stages[self.stage - 1])  # (B, C_t, H_t, W_t)
        losses = {"hint": self.beta * hint_loss(guided, teacher_feats.stages[self.stage - 1])}
        losses.update(output_terms(logits, y, teacher_logits, self.ce_weight, self.kd_weight, self.T))
        return logits, losses

    def guided_parameters(self) -> list[nn.Parameter]:
        """Stage 1 of the paper: the student's stem and stages up to the guided layer, and
        the regressor (not the later stages, not the classifier)."""
        student = self.student
        modules = [student.conv1, getattr(student, "bn1", nn.Identity()), *student.stages[:self.stage], self.regressor]
        return [p for m in modules for p in m.parameters()]
