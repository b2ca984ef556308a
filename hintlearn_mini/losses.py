"""Every loss of the book as a pure function of tensors.

Nothing here knows about modules, data or training: each function takes tensors and
returns a scalar, so it can be shown, tested against hand-computed values and reused.
The chapter that builds each loss from scratch is named in its docstring.

Every loss computes in float32, even when the networks that produced its inputs ran
under bfloat16 autocast (``hardware.float32_loss``): a softmax, a squared error or a
Gram matrix of bfloat16 numbers would lose most of its mantissa.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .hardware import float32_loss

__all__ = ["ce_loss", "kd_loss", "hint_loss", "attention_map", "at_loss", "fsp_matrix", "fsp_loss", "nce_loss",
           "info_nce_loss", "hcl_loss", "dkd_loss"]


def _check_same_shape(what: str, a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: student and teacher shapes differ: "
                         f"{tuple(a.shape)} vs {tuple(b.shape)}; they must be equal.")


@float32_loss
def ce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the logits against the labels, averaged over the batch.

    Shapes: logits (B, classes), labels (B,) -> scalar.
    Chapter: ``book/01_teacher_and_student.ipynb``.
    """
    return F.cross_entropy(logits, labels)


@float32_loss
def kd_loss(student_logits: Tensor, teacher_logits: Tensor, T: float = 4.0) -> Tensor:
    """Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

    KD_T = T² · (1/B) · Σ_b KL( softmax(z_t[b]/T) ‖ softmax(z_s[b]/T) )

    The soft targets ``softmax(z_t/T)`` are compared with the student's softened
    distribution; the KL divergence is summed over classes and averaged over the batch
    (``batchmean``, as the official code of CRD, mdistiller and ReviewKD), then scaled
    by T² so that its gradients keep their size as T grows (the gradient of the soft
    term scales as 1/T²).

    Shapes: student_logits, teacher_logits (B, classes) -> scalar.
    Chapter: ``book/02_knowledge_distillation.ipynb``.
    """
    _check_same_shape("kd_loss", student_logits, teacher_logits)
    if T <= 0:
        raise ValueError(f"kd_loss: the temperature T must be positive, got {T}")
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * T * T


def _check_4d(what: str, *tensors: Tensor) -> None:
    for t in tensors:
        if t.dim() != 4:
            raise ValueError(f"{what}: expected feature maps of shape (B, C, H, W), got "
                             f"{tuple(t.shape)}; pass a stage output, not a pooled vector.")


@float32_loss
def hint_loss(student_regressed: Tensor, teacher_feat: Tensor) -> Tensor:
    """FitNets' hint loss (Romero et al. 2015): mean squared error over all elements.

    L_hint = (1 / (B·C·H·W)) · Σ (r(v_g) − u_h)²

    ``student_regressed`` is the student's guided layer after the regressor, so it has
    the teacher's hint shape. The paper writes ½‖·‖²; the official benchmark code
    (RepDistiller, mdistiller) uses the element mean with β = 100, and so do we.

    Shapes: (B, C, H, W) and (B, C, H, W) -> scalar.
    Chapter: ``book/03_fitnets.ipynb``.
    """
    _check_same_shape("hint_loss", student_regressed, teacher_feat)
    return F.mse_loss(student_regressed, teacher_feat)


def _pool_to_smaller(a: Tensor, b: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Average-pool the spatially larger of two maps to the other's size, as the
    official AT/FSP code does (adaptive average pooling)."""
    _check_4d(what, a, b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{what}: batch sizes differ: {tuple(a.shape)} vs {tuple(b.shape)}; "
                         f"both maps must come from the same images.")
    (ha, wa), (hb, wb) = a.shape[2:], b.shape[2:]
    if (ha, wa) == (hb, wb):
        return a, b
    if ha >= hb and wa >= wb:
        return F.adaptive_avg_pool2d(a, (hb, wb)), b
    if hb >= ha and wb >= wa:
        return a, F.adaptive_avg_pool2d(b, (ha, wa))
    raise ValueError(f"{what}: spatial sizes cannot be matched by pooling: {tuple(a.shape)} vs "
                     f"{tuple(b.shape)} (one map must be at least as large in both H and W).")


@float32_loss(cast_inputs=False)  # reduces in float32 itself, below
def attention_map(feat: Tensor, p: int = 2) -> Tensor:
    """Activation-based spatial attention (Zagoruyko & Komodakis 2017, eq. 2 with F = mean_c |A|^p).

    Q = normalise( flatten( (1/C) Σ_c A_c^p ) ), each sample's row L2-normalised.

    The channel mean (the official code) and the paper's channel sum differ by the
    factor C, which the normalisation cancels. As in the official code the power is
    taken without an absolute value, which matters only for odd p on features with
    negative values.

    Shapes: (B, C, H, W) -> (B, H·W).
    Chapter: ``book/04_attention_transfer.ipynb``.
    """
    _check_4d("attention_map", feat)
    if p == 2:  # Σ_c A_c² accumulated in float32 without a float32 copy of the map
        energy = torch.linalg.vector_norm(feat, 2, dim=1, dtype=torch.float32).square()
        return F.normalize(energy.flatten(1) / feat.shape[1], dim=1)
    return F.normalize(feat.float().pow(p).mean(1).flatten(1), dim=1)


@float32_loss(cast_inputs=False)  # attention_map accumulates in float32 itself
def at_loss(student_feat: Tensor, teacher_feat: Tensor, p: int = 2) -> Tensor:
    """Attention transfer loss for one pair of maps, as in the authors' code.

    L_AT = (1 / (B·H·W)) · Σ_b Σ_j (Q_s[b, j] − Q_t[b, j])²

    the mean over the batch and positions of the squared difference of the two
    attention maps; β (1000 in the official code) is applied by the caller. The
    paper's equation (β/2 · Σ_b ‖Q_s − Q_t‖_p, not squared) is another scale:
    see the chapter. If the maps differ in size the larger is average-pooled to the
    smaller first; channel counts may differ.

    Shapes: (B, C_s, H_s, W_s), (B, C_t, H_t, W_t) -> scalar.
    Chapter: ``book/04_attention_transfer.ipynb``.
    """
    if student_feat.shape[2:] != teacher_feat.shape[2:]:  # pool in float32
        student_feat, teacher_feat = student_feat.float(), teacher_feat.float()
    student_feat, teacher_feat = _pool_to_smaller(student_feat, teacher_feat, "at_loss")
    return (attention_map(student_feat, p) - attention_map(teacher_feat, p)).pow(2).mean()


@float32_loss
def fsp_matrix(f1: Tensor, f2: Tensor) -> Tensor:
    """The FSP ("flow of solution procedure") matrix of Yim et al. (2017), eq. 1.

    G[b, i, j] = Σ_{h,w} f1[b, i, h, w] · f2[b, j, h, w] / (H·W)

    in the paper's layout (C1, C2). The larger map is average-pooled to the smaller
    first, as the CRD authors' re-implementation (RepDistiller ``FSP.py``) does; that
    code stores the transpose, (C2, C1), which gives the same loss.

    Shapes: (B, C1, H, W), (B, C2, H', W') -> (B, C1, C2).
    Chapter: ``book/05_fsp.ipynb``.
    """
    f1, f2 = _pool_to_smaller(f1, f2, "fsp_matrix")
    b, c1, h, w = f1.shape
    return _PositionSum.apply(_positions_by_channels(f1), _positions_by_channels(f2)) / (h * w)


def _positions_by_channels(feat: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H·W, C): a view, without a copy, of a channels-last map."""
    b, c, h, w = feat.shape
    return feat.permute(0, 2, 3, 1).reshape(b, h * w, c)


class _PositionSum(torch.autograd.Function):
    """G = A1ᵀ·A2 for A1 (B, P, C1), A2 (B, P, C2): the sum over positions of the FSP
    matrix. Written out so that both gradients, A2·dGᵀ and A1·dG, come back (B, P, C):
    channels-last like the maps, so they add into the network's own gradients without
    a change of layout (autograd's ``bmm`` returns one of them channels-first, and
    converting it back was more than half of what FSP's step cost beyond KD's)."""

    @staticmethod
    def forward(ctx, a1: Tensor, a2: Tensor) -> Tensor:
        ctx.save_for_backward(a1, a2)
        return torch.bmm(a1.transpose(1, 2), a2)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a1, a2 = ctx.saved_tensors
        return torch.bmm(a2, grad.transpose(1, 2)), torch.bmm(a1, grad)


@float32_loss
def fsp_loss(student_pairs, teacher_pairs) -> Tensor:
    """FSP distillation loss: Σ over pairs of the mean squared difference of FSP matrices.

    L_FSP = Σ_i (1 / (B·C1·C2)) · ‖G_i^S − G_i^T‖²_F      (unweighted, as the official code)

    Each argument is a list of ``(f_in, f_out)`` feature-map pairs; the student's and
    teacher's pairs must have equal channel counts (the paper builds its students so).

    Shapes: lists of ((B, C1, H, W), (B, C2, H', W')) -> scalar.
    Chapter: ``book/05_fsp.ipynb``.
    """
    if len(student_pairs) != len(teacher_pairs) or not student_pairs:
        raise ValueError(f"fsp_loss: got {len(student_pairs)} student pairs and "
                         f"{len(teacher_pairs)} teacher pairs; give the same, non-zero number.")
    total = 0.0
    for i, ((s1, s2), (t1, t2)) in enumerate(zip(student_pairs, teacher_pairs)):
        if s1.shape[:2] != t1.shape[:2] or s2.shape[:2] != t2.shape[:2]:
            raise ValueError(
                f"fsp_loss, pair {i}: channel counts differ: student {tuple(s1.shape)} & {tuple(s2.shape)} "
                f"vs teacher {tuple(t1.shape)} & {tuple(t2.shape)}. FSP compares (C1, C2) matrices, so "
                f"student and teacher need equal channels at the tapped layers: choose other taps "
                f"or another pair of networks.")
        total = total + (fsp_matrix(s1, s2) - fsp_matrix(t1, t2)).pow(2).mean()
    return total


@float32_loss
def info_nce_loss(student_embed: Tensor, teacher_embed: Tensor, tau: float = 0.07) -> Tensor:
    """Symmetric in-batch InfoNCE (van den Oord et al. 2018; CLIP's form) between unit
    embeddings: the other images of the batch are the negatives, no memory bank.

    L = ½ [CE(S Tᵀ/τ, diag) + CE(T Sᵀ/τ, diag)],   S, T: (B, d) with unit rows.

    The contrastive objective chapter 6 writes first; CRD replaces its B − 1 in-batch
    negatives by K negatives of other classes from a memory bank (``nce_loss``).

    Shapes: (B, d), (B, d) -> scalar.
    Chapter: ``book/06_crd.ipynb``.
    """
    _check_same_shape("info_nce_loss", student_embed, teacher_embed)
    logits = student_embed @ teacher_embed.t() / tau  # (B, B): row b's positive is column b
    targets = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


@float32_loss
def nce_loss(scores: Tensor, n_data: int, eps: float = 1e-7) -> Tensor:
    """The NCE objective of CRD's official code (Tian et al. 2020, RepDistiller ``ContrastLoss``).

    ``scores`` (B, K+1, 1): the critic's values already divided by the normalising
    constant, column 0 the positive pair. With uniform noise Pn = 1/N:

        log D1 = log( P_0 / (P_0 + K·Pn + ε) )                 (positive: from the data)
        log D0 = log( K·Pn / (P_k + K·Pn + ε) ),  k = 1..K      (negatives: from the noise)
        L = −( Σ_b log D1[b] + Σ_b Σ_k log D0[b, k] ) / B

    Shapes: (B, K+1, 1) -> scalar.
    Chapter: ``book/06_crd.ipynb``.
    """
    if scores.dim() != 3 or scores.shape[2] != 1 or scores.shape[1] < 2:
        raise ValueError(f"nce_loss: expected scores of shape (B, K+1, 1) with K >= 1, got {tuple(scores.shape)}")
    b, k = scores.shape[0], scores.shape[1] - 1
    noise = k / n_data  # K · Pn
    positive = scores[:, 0]
    log_d1 = torch.log(positive / (positive + noise + eps))
    log_d0 = torch.log(noise / (scores[:, 1:] + noise + eps))
    return -(log_d1.sum() + log_d0.sum()) / b


@float32_loss
def hcl_loss(student_feats, teacher_feats) -> Tensor:
    """ReviewKD's hierarchical context loss (Chen et al. 2021), as the official code.

    For each level (fs, ft), (B, C, h, w):
        ℓ = MSE(fs, ft) + Σ_{l in (4, 2, 1), l < h} w_l · MSE(pool_l(fs), pool_l(ft)),
        w halving per level used (½, ¼, ⅛), then ℓ / (1 + Σ w_l);
    summed over the levels (not averaged). MSE is the element mean; pool_l the
    adaptive average pool to l × l.

    Shapes: lists of (B, C, h, w) pairs, equal shapes per level -> scalar.
    Chapter: ``book/07_reviewkd.ipynb``.
    """
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError(f"hcl_loss: {len(student_feats)} student levels and {len(teacher_feats)} "
                         f"teacher levels; give the same, non-zero number.")
    total = 0.0
    for i, (fs, ft) in enumerate(zip(student_feats, teacher_feats)):
        if fs.shape != ft.shape:
            raise ValueError(f"hcl_loss, level {i}: student {tuple(fs.shape)} vs teacher {tuple(ft.shape)}; "
                             f"each fused student level must have its teacher level's shape.")
        level = F.mse_loss(fs, ft)
        weight, weights = 1.0, 1.0
        for size in (4, 2, 1):
            if size >= fs.shape[2]:
                continue
            weight /= 2.0
            level = level + weight * F.mse_loss(F.adaptive_avg_pool2d(fs, size), F.adaptive_avg_pool2d(ft, size))
            weights += weight
        total = total + level / weights
    return total


@float32_loss
def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, alpha: float = 1.0,
             beta: float = 8.0, T: float = 4.0) -> Tensor:
    """Decoupled knowledge distillation (Zhao et al., CVPR 2022), the official code's form
    (``megvii-research/mdistiller``, ``distillers/DKD.py``).

    Split each softened distribution p = softmax(z/T) at the target class t:

        b = [p_t, 1 − p_t]                 the binary target/non-target split
        p̂ = softmax(z/T) over the classes ≠ t  (renormalised without the target)

        TCKD = T² · (1/B) Σ_b KL(b_teacher ‖ b_student)
        NCKD = T² · (1/B) Σ_b KL(p̂_teacher ‖ p̂_student)
        DKD  = α · TCKD + β · NCKD

    Per sample, Hinton's KD_T equals TCKD + (1 − p_t^teacher) · NCKD: KD weights the
    non-target term by the teacher's doubt, which is small exactly where the teacher is
    confident; DKD gives it its own weight β instead. As the official code, p̂ comes from
    the logits with the target's lowered by 1000 (its probability underflows to zero).

    Shapes: student_logits, teacher_logits (B, classes), labels (B,) -> scalar.
    Chapter: none yet (a chapter 10, "Where the field went", will build it from scratch).
    """
    _check_same_shape("dkd_loss", student_logits, teacher_logits)
    if T <= 0:
        raise ValueError(f"dkd_loss: the temperature T must be positive, got {T}")
    target = F.one_hot(labels, student_logits.shape[1]).bool()     # (B, classes)

    def split(logits):  # log b (B, 2) and log p̂ (B, classes)
        log_p = F.log_softmax(logits / T, dim=1)
        log_target = log_p.masked_fill(~target, float("-inf")).logsumexp(1)
        log_rest = log_p.masked_fill(target, float("-inf")).logsumexp(1)
        log_non_target = F.log_softmax(logits / T - 1000.0 * target, dim=1)
        return torch.stack([log_target, log_rest], 1), log_non_target

    log_b_student, log_rest_student = split(student_logits)
    log_b_teacher, log_rest_teacher = split(teacher_logits)
    tckd = F.kl_div(log_b_student, log_b_teacher, reduction="batchmean", log_target=True)
    nckd = F.kl_div(log_rest_student, log_rest_teacher, reduction="batchmean", log_target=True)
    return (alpha * tckd + beta * nckd) * T * T
