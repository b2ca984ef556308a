"""The checks of chapter 4, ``book/04_attention_transfer.ipynb``: attention maps and the
attention-transfer term (Zagoruyko & Komodakis 2017, "Paying more attention to
attention", §3.1, eq. 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import at_loss
from ._checking import Wrong, check, named_mistake, scalar_answer, tensor_answer

__all__ = ["check_paper_at_loss", "check_abs_attention_map"]


# ------------------------------------------------------------------ ex-attention-map
def _paper_at_loss(student_feats, teacher_feats, beta, squared=False) -> torch.Tensor:
    """The reference of ``ex-attention-map``: the paper's AT term (eq. 2),
    (β/2) · Σ_j mean_b ‖Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂‖₂ with Q = vec(Σ_c |A_c|²) of each tap j
    of (B, C, H, W) maps; ``squared`` squares the norm (a mistake)."""
    total = 0.0
    for fs, ft in zip(student_feats, teacher_feats):
        qs, qt = (F.normalize(f.pow(2).sum(1).flatten(1), dim=1) for f in (fs, ft))
        gap = (qs - qt).norm(dim=1)
        total = total + (gap.pow(2) if squared else gap).mean()
    return beta / 2 * total


def _paper_at_mistakes(student_feats, teacher_feats, beta) -> list[tuple[float, str]]:
    """The mistakes of ``ex-attention-map`` that scale the term: (factor, hint)."""
    b = len(student_feats[0])
    return [(2.0, "the ½ of β/2 is missing"), (2 / beta, "β/2 is missing"), (1 / beta, "β is missing and so is ½"),
            (float(b), f"you sum over the batch of {b} images; average over it")]


@check
def check_paper_at_loss(fn):
    """Exercise ``ex-attention-map``: ``fn(student_feats, teacher_feats, beta)`` -> the
    paper's attention-transfer term over several taps, lists of (B, C, H, W) maps (channels
    may differ, sizes agree per tap): (β/2) Σ_j mean_b ‖q̂_S − q̂_T‖₂, a norm, not squared,
    where the official code uses β · mean((q̂_S − q̂_T)²)."""
    g = torch.Generator().manual_seed(8)
    shapes = [((4, 6, 8, 8), (4, 12, 8, 8)), ((4, 8, 4, 4), (4, 16, 4, 4))]
    student, teacher = zip(*[(torch.randn(*s, generator=g), torch.randn(*t, generator=g)) for s, t in shapes])
    beta = 1000.0
    expected = _paper_at_loss(student, teacher, beta)
    answer = scalar_answer(fn, (student, teacher, beta), " (one number for all taps)")
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if close(expected):
        return f"correct: {answer.item():.4f}."
    if close(beta * sum(at_loss(s, t) for s, t in zip(student, teacher))):
        raise Wrong("that is the official code's β · mean of squared differences; "
                    "the paper takes the norm of each image's difference, times β/2")
    if close(_paper_at_loss(student, teacher, beta, squared=True)):
        raise Wrong("the paper's norm is not squared: ‖q̂_S − q̂_T‖₂")
    hint = named_mistake(answer, expected, _paper_at_mistakes(student, teacher, beta))
    if hint is not None:
        raise Wrong(f"off by a factor {(answer / expected).item():.4g}: {hint}")
    raise Wrong(f"expected {expected.item():.4f}, got {answer.item():.4f}: normalise "
                "each image's map, then take the L2 norm of the difference")


# ------------------------------------------------------------------ ex-abs-attention
def _abs_attention(feat: torch.Tensor, p: float) -> torch.Tensor:
    """The reference of ``ex-abs-attention`` (not printed in the chapter): the (B, H·W) maps
    F = mean_c |A_c|^p of (B, C, H, W) features, each row of unit L2 norm."""
    return F.normalize(feat.abs().pow(p).mean(1).flatten(1), dim=1)


def _abs_attention_mistake(answer, expected, feat, p) -> str:
    """What (B, H·W) maps that are not ``expected`` at power p got wrong."""
    if p != 0.5 and torch.allclose(answer, F.normalize(feat.pow(p).mean(1).flatten(1), dim=1), atol=1e-5):
        return (f"at p={p} you raise A itself to the power: negative activations "
                "then cancel positive ones; take |A| first")
    if torch.isnan(answer).any():
        return f"at p={p} your maps hold NaN: a fractional power of a negative number; take |A| first"
    if torch.allclose(answer, feat.abs().pow(p).mean(1).flatten(1), atol=1e-5):
        return "the maps are not normalised: divide each row by its L2 norm"
    return (f"at p={p} your maps differ from mean_c |A_c|^p, normalised, by up to "
            f"{(answer - expected).abs().max():.3g}")


@check
def check_abs_attention_map(fn):
    """Exercise ``ex-abs-attention``: ``fn(feat, p)`` -> (B, H·W) maps of
    F(A) = mean_c |A_c|^p, each row of unit L2 norm: the paper's family of attention
    functions, for features that can be negative (taken before the ReLU), at any p > 0
    (odd and fractional included)."""
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(3, 6, 4, 4, generator=g)  # signed, as a pre-activation map is
    for p in (1, 3, 0.5):
        expected = _abs_attention(feat, p)
        answer = tensor_answer(fn, (feat, p), expected.shape, ": one flattened H·W map per image")
        if not torch.allclose(answer, expected, atol=1e-5):
            raise Wrong(_abs_attention_mistake(answer, expected, feat, p))
    return "correct for p = 1, 3 and 0.5 on signed features."
