"""The checks of chapter 5, ``book/05_fsp.ipynb``: FSP matrices and their loss (Yim et al.
2017, "A gift from knowledge distillation", eq. 1 and 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import fsp_matrix
from ._checking import Wrong, call, check, scalar_answer

__all__ = ["check_fsp_correlation", "check_weighted_fsp_loss"]


# ------------------------------------------------------------------ ex-fsp-matrix
def _fsp_correlation(f1, f2) -> torch.Tensor:
    """The reference of ``ex-fsp-matrix``: (B, C1, C2) FSP matrices of cosine similarities,
    G[b, i, j] = ⟨f1[b, i], f2[b, j]⟩ / (‖f1[b, i]‖ · ‖f2[b, j]‖) over the H·W positions."""
    a, b = F.normalize(f1.flatten(2), dim=2), F.normalize(f2.flatten(2), dim=2)
    return a @ b.transpose(1, 2)


def _fsp_correlation_mistake(answer, expected, f1, f2) -> str:
    """What (B, C1, C2) matrices that are not ``expected`` got wrong."""
    if torch.allclose(answer, fsp_matrix(f1, f2), atol=1e-5):
        return ("that is the plain FSP matrix: divide each entry by the norms of "
                "the two channels over the H·W positions")
    if torch.allclose(answer, expected / (f1.shape[2] * f1.shape[3]), atol=1e-5):
        return "you also divide by H·W: the cosine needs only the two norms"
    return (f"your matrices differ from the cosine similarities by up to {(answer - expected).abs().max():.3g}: "
            "normalise each channel of each image on its own (over H·W, not over the batch)")


@check
def check_fsp_correlation(fn):
    """Exercise ``ex-fsp-matrix``: ``fn(f1, f2)`` -> (B, C1, C2) FSP matrices normalised to
    cosine similarities (each entry in [−1, 1]), for two maps of the same H × W. Yim et
    al. 2017's matrix (eq. 1) is the mean of the products; dividing by the channel norms
    makes each entry independent of the scale of either map."""
    g = torch.Generator().manual_seed(9)
    f1 = torch.randn(2, 3, 4, 5, generator=g) * torch.tensor([1.0, 5.0, 0.2]).view(1, 3, 1, 1)
    f2 = torch.randn(2, 4, 4, 5, generator=g)
    expected = _fsp_correlation(f1, f2)
    answer = call(fn, f1, f2)
    if not isinstance(answer, torch.Tensor):
        raise Wrong(f"return a tensor; got {type(answer).__name__}")
    if answer.shape == (2, 4, 3):
        raise Wrong("you return the transpose, (B, C2, C1): G[b, i, j] pairs channel i of f1 with channel j of f2")
    if answer.shape != expected.shape:
        raise Wrong(f"shape {tuple(answer.shape)}; expected {tuple(expected.shape)}")
    if not torch.allclose(answer, expected, atol=1e-5):
        raise Wrong(_fsp_correlation_mistake(answer, expected, f1, f2))
    return "correct: one cosine similarity per pair of channels."


# ------------------------------------------------------------------ ex-weighted-fsp
def _weighted_fsp(student_pairs, teacher_pairs, weights) -> torch.Tensor:
    """The reference of ``ex-weighted-fsp``: Σ_i λ_i · mean (G_i^S − G_i^T)²."""
    return sum(w * (fsp_matrix(*s) - fsp_matrix(*t)).pow(2).mean()
               for w, s, t in zip(weights, student_pairs, teacher_pairs))


@check
def check_weighted_fsp_loss(fn):
    """Exercise ``ex-weighted-fsp``: ``fn(student_pairs, teacher_pairs, weights)`` ->
    Σ_i λ_i · mean((G_i^S − G_i^T)²) over pairs of (B, C, H, W) maps, the larger map of a
    pair pooled to the smaller (``losses.fsp_matrix`` may be used)."""
    g = torch.Generator().manual_seed(2)
    shapes = [((2, 4, 8, 8), (2, 4, 8, 8)), ((2, 4, 8, 8), (2, 6, 4, 4))]
    student = [tuple(torch.randn(*s, generator=g) for s in pair) for pair in shapes]
    teacher = [tuple(torch.randn(*s, generator=g) for s in pair) for pair in shapes]
    weights = (0.25, 4.0)
    expected = _weighted_fsp(student, teacher, weights)
    answer = scalar_answer(fn, (student, teacher, weights), " (one number for all pairs)")
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if close(expected):
        return f"correct: {answer.item():.4f}."
    if close(_weighted_fsp(student, teacher, (1.0, 1.0))):
        raise Wrong("the weights are ignored: multiply pair i's term by weights[i]")
    if close(_weighted_fsp(student, teacher, weights[::-1])):
        raise Wrong("the weights are applied to the wrong pairs: weights[i] goes with pair i")
    if close(expected / 2):
        raise Wrong("you average over the pairs; the loss sums them")
    raise Wrong(f"expected {expected.item():.4f}, got {answer.item():.4f}: is the 8×8 map "
                "of the second pair pooled to 4×4 before its Gram matrix?")
