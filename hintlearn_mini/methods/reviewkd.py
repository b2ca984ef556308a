"""ReviewKD: Distilling Knowledge via Knowledge Review (Chen, Liu, Zhao & Jia, CVPR 2021).

Each stage of the student learns from the same stage of the teacher, but the student's
feature at that stage is first *fused* with the student's deeper features, from the
deepest back to the shallowest, by attention-based fusion (ABF) modules; each fused
feature is compared with the teacher's by the hierarchical context loss
(``losses.hcl_loss``):

    L = CE + w · min(1, t / t_warm) · HCL,   t the fraction of training done.

Defaults follow the official CIFAR-100 code (``dvlab-research/ReviewKD``):

* student taps: the three stage outputs *after* the ReLU and the pooled map (C, 1, 1);
  teacher taps: the three stage outputs *before* the ReLU and the pooled map;
* ABF(in, mid, out, fuse): 1×1 conv + BN to ``mid``; if fusing, the deeper residual is
  resized (nearest) and a 1×1 conv + sigmoid gives two per-pixel weights for the two
  inputs; then 3×3 conv + BN to ``out``; mid = min(512, last student width);
* weight w = 1.0, the constructor's default. The official script sets w per pair
  (``OFFICIAL_WEIGHTS``: 0.6 for resnet56 → resnet20, 1.0 for resnet110 → resnet32, 5.0
  for the ×4 and WRN pairs; mdistiller uses 5.0); ``official_weight`` gives it, and None
  for a pair the script never ran, such as the book's resnet32 → resnet8, where
  ``default_weight``'s 1.0 is our default, not an official value;
* warm-up over the first 20 of 240 epochs, here the same fraction of the schedule
  (1/12), ramped per step instead of per epoch.

The official CIFAR script never puts its teacher in eval mode (its BatchNorm uses batch
statistics); we keep the teacher frozen in eval mode, as mdistiller and the official
ImageNet code do.

Chapter: ``book/07_reviewkd.ipynb``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import hcl_loss
from .base import Distiller, output_terms, probe_features

__all__ = ["ABF", "ReviewKD", "OFFICIAL_WEIGHTS", "official_weight", "default_weight"]

# The HCL weight w of each pair in the official CIFAR-100 runs
# (dvlab-research/ReviewKD: CIFAR-100/script/reviewKD.sh), by (teacher, student).
OFFICIAL_WEIGHTS = {
    ("resnet56", "resnet20"): 0.6, ("resnet110", "resnet32"): 1.0, ("resnet32x4", "resnet8x4"): 5.0,
    ("wrn_40_2", "wrn_16_2"): 5.0, ("wrn_40_2", "wrn_40_1"): 5.0,
}


def official_weight(teacher: str, student: str) -> float | None:
    """The weight the official script uses for this pair; None for a pair it never ran."""
    return OFFICIAL_WEIGHTS.get((teacher, student))


def default_weight(teacher: str, student: str) -> float:
    """The pair's official weight where there is one, else 1.0: the constructor's default
    (the official value of resnet110 → resnet32), which is ours, not official, here."""
    official = official_weight(teacher, student)
    return 1.0 if official is None else official


def _resize(x: Tensor, size: int) -> Tensor:
    """Nearest-neighbour resize to size × size, as the official ``F.interpolate`` call."""
    return x if x.shape[-1] == size else F.interpolate(x, (size, size), mode="nearest")


class ABF(nn.Module):
    """Attention-based fusion: ``forward(x, residual, shape, out_shape)`` -> (y, x').

    The official module concatenates x' = BN(conv1(x)) with the upsampled residual r↑ and
    applies a 1×1 convolution W = [W_x | W_r] to the 2·mid channels at full resolution:

        (a, b) = σ(W_x x' + W_r r↑ + bias),   x'' = a ⊙ x' + b ⊙ r↑.

    A 1×1 convolution commutes with nearest-neighbour upsampling, so W_r r↑ = (W_r r)↑:
    this module applies W_r to the small residual and upsamples the two-channel result.
    Same parameters, same numbers (to float rounding), and no (B, 2·mid, h, w) copy: the
    concatenation, the 1×1 convolution over it and their gradients were most of the
    official formulation's extra cost on a CPU (measured in the chapter).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, fuse: bool):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels))
        self.conv2 = nn.Sequential(nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(out_channels))
        self.att = nn.Sequential(nn.Conv2d(2 * mid_channels, 2, 1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)
        self.last_attention: Tensor | None = None  # (B, 2, h, w) of the last call, for figures

    def attention(self, x: Tensor, residual: Tensor, shape: int) -> Tensor:
        """σ(att([x, resize(residual)])) without building the concatenation: (B, 2, h, w)."""
        conv, mid = self.att[0], x.shape[1]
        own = F.conv2d(x, conv.weight[:, :mid], conv.bias)           # (B, 2, h, w)
        deep = F.conv2d(residual, conv.weight[:, mid:])              # (B, 2, h_r, w_r)
        return self.att[1](own + _resize(deep, shape))

    def forward(self, x: Tensor, residual: Tensor | None = None, shape: int | None = None,
                out_shape: int | None = None) -> tuple[Tensor, Tensor]:
        x = self.conv1(x)                                    # (B, mid, h, w)
        if self.att is not None:
            if residual is None:
                raise ValueError("this ABF fuses: pass the deeper level's residual")
            weights = self.attention(x, residual, shape)     # (B, 2, h, w)
            self.last_attention = weights.detach()
            x = x * weights[:, :1] + _resize(residual, shape) * weights[:, 1:]
        if out_shape is not None and x.shape[-1] != out_shape:
            x = _resize(x, out_shape)
        return self.conv2(x), x                              # (B, out, h', w'), residual


class ReviewKD(Distiller):
    """Loss = ce_weight·CE + weight·ramp·HCL(review(student taps), teacher taps).

    ``review=False`` is the paper's ablation of the review mechanism: the same ABF
    modules and HCL, but no ABF fuses, so each student stage learns from the teacher's
    same stage alone.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, weight: float = 1.0,
                 warmup: float = 20 / 240, ce_weight: float = 1.0, review: bool = True):
        super().__init__(student, teacher)
        s_taps = self.student_taps(probe_features(student))
        t_taps = self.teacher_taps(probe_features(teacher))
        if len(s_taps) != len(t_taps):
            raise ValueError(f"ReviewKD: {len(s_taps)} student levels but {len(t_taps)} teacher levels")
        in_channels = [t.shape[1] for t in s_taps]           # shallow -> deep
        out_channels = [t.shape[1] for t in t_taps]
        self.shapes = [t.shape[-1] for t in s_taps][::-1]     # deep -> shallow, e.g. [1, 8, 16, 32]
        self.out_shapes = [t.shape[-1] for t in t_taps][::-1]
        mid = min(512, in_channels[-1])
        abfs = [ABF(c_in, mid, c_out, fuse=review and i < len(in_channels) - 1)
                for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels))]
        self.abfs = nn.ModuleList(abfs[::-1])                 # deepest first: it starts the review
        self.weight, self.warmup, self.ce_weight, self.with_review = weight, warmup, ce_weight, review
        self.progress = 1.0  # fraction of training done; set by the training loop

    @staticmethod
    def student_taps(feats) -> list[Tensor]:
        """Post-ReLU stage outputs and the pooled map, shallow -> deep."""
        return [*feats.stages, feats.pooled[:, :, None, None]]

    @staticmethod
    def teacher_taps(feats) -> list[Tensor]:
        """Pre-ReLU stage outputs and the pooled map, shallow -> deep."""
        return [*feats.preact, feats.pooled[:, :, None, None]]

    def review(self, student_taps: list[Tensor]) -> list[Tensor]:
        """Fuse the student's taps from the deepest back; results shallow -> deep.
        (Without the review no ABF fuses: each ignores the residual it is given.)"""
        taps = student_taps[::-1]
        out, residual = self.abfs[0](taps[0], out_shape=self.out_shapes[0])
        results = [out]
        for tap, abf, shape, out_shape in zip(taps[1:], self.abfs[1:], self.shapes[1:], self.out_shapes[1:]):
            out, residual = abf(tap, residual, shape, out_shape)
            results.insert(0, out)
        return results

    def set_progress(self, fraction: float) -> None:
        self.progress = fraction

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None):
        logits, student_feats = self.student(x, features=True)
        _, teacher_feats = self.teacher_forward(x, features=True)
        fused = self.review(self.student_taps(student_feats))
        ramp = min(1.0, self.progress / self.warmup) if self.warmup > 0 else 1.0
        losses = {"hcl": self.weight * ramp * hcl_loss(fused, self.teacher_taps(teacher_feats))}
        losses.update(output_terms(logits, y, ce_weight=self.ce_weight))
        return logits, losses
