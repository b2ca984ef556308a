"""The check of chapter 7, ``book/07_reviewkd.ipynb``: ReviewKD's hierarchical context
loss, HCL (Chen et al. 2021, "Distilling knowledge via knowledge review", §3.3, and the
official ``hcl``; the package's ``losses.hcl_loss``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checking import Wrong, check, scalar_answer

__all__ = ["check_hcl_levels"]


def _hcl_levels(fs, ft, levels, halve_used_only=True, skip_large=True, normalise=True) -> torch.Tensor:
    """The reference of ``ex-hcl-level`` (not printed in the chapter): ReviewKD's HCL of one
    pair of (B, C, h, h) maps over the pyramid ``levels``:
    ℓ = [MSE(fs, ft) + Σ_{l in levels, l < h} w_l · MSE(pool_l fs, pool_l ft)] / (1 + Σ w_l),
    w halving at each level *used* (½, ¼, ...). The flags give the typical mistakes."""
    loss, weight, weights = F.mse_loss(fs, ft), 1.0, 1.0
    for size in levels:
        if size >= fs.shape[2] and skip_large:
            if not halve_used_only:
                weight /= 2.0
            continue
        weight /= 2.0
        loss = loss + weight * F.mse_loss(F.adaptive_avg_pool2d(fs, size), F.adaptive_avg_pool2d(ft, size))
        weights += weight
    return loss / weights if normalise else loss


def _hcl_levels_mistake(answer, fs, ft, levels) -> str:
    """What an HCL that is not ``_hcl_levels(fs, ft, levels)`` got wrong."""
    h = fs.shape[2]
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if levels != (4, 2, 1) and close(_hcl_levels(fs, ft, (4, 2, 1))):
        return "you pool to 4, 2 and 1 whatever `levels` says: use the levels given"
    if close(_hcl_levels(fs, ft, levels, halve_used_only=False)):
        return ("the weight halves at each level *used*: a level skipped because it is not smaller "
                "than the map does not halve it")
    if close(_hcl_levels(fs, ft, levels, skip_large=False)):
        return f"a level l ≥ h = {h} is skipped: pool only to sizes smaller than the map"
    if close(_hcl_levels(fs, ft, levels, normalise=False)):
        return "divide the weighted sum by 1 plus the weights used"
    used = 1 + sum(size < h for size in levels)
    if close(_hcl_levels(fs, ft, levels, normalise=False) / used):
        return f"you divide by the number of terms ({used}); divide by the sum of their weights"
    return "start from the full map's MSE (weight 1), add each pooled MSE with its weight, then normalise"


@check
def check_hcl_levels(fn):
    """Exercise ``ex-hcl-level``: ``fn(fs, ft, levels)`` -> HCL of one pair of (B, C, h, h)
    maps over the pyramid ``levels`` (largest first, e.g. (8, 4, 2, 1)), with the official
    rule of weights: 1 for the full map, then ½, ¼, ... for each level *smaller than h*, in
    order, the sum divided by the sum of the weights used (``losses.hcl_loss`` is levels
    (4, 2, 1))."""
    g = torch.Generator().manual_seed(7)
    cases = [(16, (8, 4, 2, 1)), (8, (8, 4, 2, 1)), (4, (2,)), (8, (6, 3)), (2, (4, 2, 1)), (1, (4, 2, 1))]
    for h, levels in cases:
        fs, ft = torch.randn(2, 3, h, h, generator=g), torch.randn(2, 3, h, h, generator=g)
        answer = scalar_answer(fn, (fs, ft, levels))
        expected = _hcl_levels(fs, ft, levels)
        if not torch.allclose(answer, expected, rtol=1e-4):
            raise Wrong(f"{h}×{h} maps, levels {levels}: expected {expected.item():.4f}, got "
                        f"{answer.item():.4f}: {_hcl_levels_mistake(answer, fs, ft, levels)}")
    return "correct for finer and coarser pyramids, skipped levels and 1×1 maps."
