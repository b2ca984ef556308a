"""Measurements of trained networks that a chapter reads (they never change a run).

FitNets' stage 1 promises that the student's guided layer, through the regressor,
*predicts* the teacher's hint. Whether it does is a number: on images the student never
trained on, how much of the hint's variation does the prediction explain?

    R² = 1 − Σ (r(v_g(x)) − u_h(x))² / Σ (u_h(x) − ū_h)²

summed over test images and every element of the hint, ū_h the hint's mean over those
images, element by element (the best prediction that ignores the image). R² = 1 is a
perfect copy, 0 is no better than that constant map, and below 0 is worse.

Chapter: ``book/03_fitnets.ipynb``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .data import ImageSet
from .views import batches
from .methods.fitnets import FitNets

__all__ = ["hint_prediction", "explained_variance"]


@torch.no_grad()
def hint_prediction(distiller: FitNets, data: ImageSet, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """``(predicted, hint)``, both (N, C_t, H_t, W_t) float32: the regressed guided layer
    and the teacher's hint for every image of ``data``, un-augmented, in eval mode (the
    BatchNorm statistics of training), in float32. Training modes are restored after."""
    modes = [(m, m.training) for m in (distiller.student, distiller.regressor, distiller.teacher)]
    for module, _ in modes:
        module.eval()
    predicted, hints = [], []
    try:
        for x, _, _ in batches(data, batch_size):
            x = x.to(next(distiller.student.parameters()).device)
            _, student_feats = distiller.student(x, features=True)
            _, teacher_feats = distiller.teacher(x, features=True)
            predicted.append(distiller.regressor(student_feats.stages[distiller.stage - 1]).float().cpu())
            hints.append(teacher_feats.stages[distiller.stage - 1].float().cpu())
    finally:
        for module, mode in modes:
            module.train(mode)
    return torch.cat(predicted), torch.cat(hints)


def explained_variance(predicted: Tensor, target: Tensor) -> float:
    """R² of ``predicted`` for ``target`` (both (N, ...)): 1 − SSE / SST, SST about the
    mean over the N images of each element."""
    if predicted.shape != target.shape:
        raise ValueError(f"explained_variance: the prediction has shape {tuple(predicted.shape)} and "
                         f"the target {tuple(target.shape)}; they must be equal")
    if len(target) < 2:
        raise ValueError("explained_variance needs at least 2 images: the baseline is their mean")
    sse = (predicted - target).pow(2).sum()
    sst = (target - target.mean(0, keepdim=True)).pow(2).sum()
    return float(1 - sse / sst)
