"""The checks of chapter 2, ``book/02_knowledge_distillation.ipynb``: soft targets, the
soft cross-entropy and its gradient (Hinton, Vinyals & Dean 2015, "Distilling the
knowledge in a neural network", §2 and §2.1)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import kd_loss
from ._checking import Wrong, call, check, named_mistake, tensor_answer

__all__ = ["check_soft_targets", "check_soft_cross_entropy", "check_kd_gradient"]


def _logits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (6, 10) batches of logits, student's and teacher's."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 10, generator=g) * 3, torch.randn(6, 10, generator=g) * 3


# ------------------------------------------------------------------ ex-soft-targets
def _soft_targets_mistake(answer, expected, z, T) -> str:
    """What a (B, C) answer that is not ``expected``, softmax(z / T) over classes, got wrong."""
    close = lambda other: torch.allclose(answer, other, atol=1e-6)
    if not torch.isfinite(answer).all():
        return (f"NaN or inf for logits as large as {z.abs().max():.0f}: exp overflows. Subtract each "
                "row's maximum from the logits before exp; the result does not change")
    if close(F.softmax(z, dim=1)):
        return f"at T={T} you return softmax(logits): divide the logits by T *before* the softmax"
    if close(F.softmax(z, dim=1) / T):
        return ("you divide the probabilities by T; divide the logits by T before the softmax, so each "
                "row still sums to 1")
    if close(F.softmax(z / T, dim=0)):
        return "the softmax runs over the batch (dim=0); it must run over the classes (dim=1)"
    sums = answer.sum(1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        return f"rows must sum to 1; yours sum to {sums.tolist()}"
    return f"at T={T} the values differ from softmax(logits / T) by up to {(answer - expected).abs().max():.3g}"


@check
def check_soft_targets(fn):
    """Exercise ``ex-soft-targets``: ``fn(logits, T)`` -> softmax(logits / T) over classes,
    (B, C), written with ``exp`` and ``sum`` only and numerically stable for large logits."""
    logits, _ = _logits()
    cases = [(logits, 1.0), (logits, 4.0), (logits * 300, 1.0)]  # the last overflows a naive exp
    for z, T in cases:
        expected = F.softmax(z / T, dim=1)
        answer = tensor_answer(fn, (z, T), expected.shape, " (one distribution per row)")
        if not torch.allclose(answer, expected, atol=1e-6):
            raise Wrong(_soft_targets_mistake(answer, expected, z, T))
    return "correct at T=1 and T=4, and stable for large logits."


# ------------------------------------------------------------------ ex-soft-cross-entropy
def _soft_cross_entropy(student_logits, teacher_logits, T: float) -> torch.Tensor:
    """The reference of ``ex-soft-cross-entropy``: Hinton's soft-target cross-entropy,
    T² · (1/B) Σ_b Σ_c −p_t[b,c] · log q_s[b,c], of (B, C) logits."""
    p = F.softmax(teacher_logits / T, dim=1)
    return -(p * F.log_softmax(student_logits / T, dim=1)).sum(1).mean() * T * T


def _soft_cross_entropy_mistakes(student_logits, teacher_logits, T: float) -> list[tuple[float, str]]:
    """The mistakes of ``ex-soft-cross-entropy`` that scale the loss: (factor, hint)."""
    b, c = student_logits.shape
    return [(1 / T**2, "the T² factor is missing: the soft term's gradients shrink as 1/T², T² restores their size"),
            (T**2, "you multiply by T² twice, or by T⁴"),
            (1 / c, "you average over classes too; sum over classes, average over the batch"),
            (1 / (c * T**2), "the T² factor is missing and you average over classes"),
            (float(b), "you sum over the batch; average over it"),
            (b / T**2, "you sum over the batch and the T² factor is missing")]


@check
def check_soft_cross_entropy(fn):
    """Exercise ``ex-soft-cross-entropy``: ``fn(student_logits, teacher_logits, T)`` -> the
    soft-target cross-entropy of Hinton et al., T² · mean over the batch of −Σ_c p_t log q_s."""
    student, teacher = _logits(1)
    T = 4.0
    expected = _soft_cross_entropy(student, teacher, T)
    answer = call(fn, student, teacher, T)
    if not isinstance(answer, torch.Tensor) or answer.numel() != 1:
        shape = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        raise Wrong(f"return a scalar tensor; got {shape}: sum over classes, then average over the batch")
    answer = answer.reshape(())
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if close(expected):
        return f"correct: {answer.item():.4f} at T={T:g}."
    if close(kd_loss(student, teacher, T)):
        raise Wrong("that is the KL divergence (kd_loss); the cross-entropy is larger by the teacher's "
                    "entropy: use −Σ p·log q")
    hint = named_mistake(answer, expected, _soft_cross_entropy_mistakes(student, teacher, T))
    if hint is not None:
        raise Wrong(f"off by a factor {(answer / expected).item():.4g}: {hint}.")
    if close(_soft_cross_entropy(teacher, student, T)):
        raise Wrong("student and teacher are swapped: the teacher's soft targets p weight the student's "
                    "log-probabilities log q")
    if close(_soft_cross_entropy(student, teacher, 1.0) * T * T):
        raise Wrong("the logits were not divided by T before the softmax")
    raise Wrong(f"expected {expected.item():.4f}, got {answer.item():.4f}; check which distribution is the "
                "target, the temperature and the reductions")


# ------------------------------------------------------------------ ex-kd-gradient
def _kd_gradient(student_logits, teacher_logits, T: float) -> torch.Tensor:
    """The reference of ``ex-kd-gradient`` (not printed in the chapter): the gradient of
    T² · (1/B) Σ_b −Σ_c p_c(T) log q_c(T) with respect to the (B, C) student logits z,
    T · (softmax(z/T) − softmax(v/T)) / B (Hinton et al. 2015, §2.1, eq. 2, times T²)."""
    q = F.softmax(student_logits / T, dim=1)
    p = F.softmax(teacher_logits / T, dim=1)
    return T * (q - p) / len(student_logits)


def _autograd_kd_gradient(student_logits, teacher_logits, T: float) -> torch.Tensor:
    """The same gradient by autograd, what the learner's formula is checked against."""
    z = student_logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        _soft_cross_entropy(z, teacher_logits, T).backward()
    return z.grad


def _gradient_answer(fn, args, shape) -> torch.Tensor:
    """``fn(*args)`` run under ``torch.no_grad()`` (an analytic gradient needs no autograd)."""
    try:
        with torch.no_grad():
            return tensor_answer(fn, args, shape, " (one gradient per logit)")
    except Wrong as wrong:
        if "grad" not in str(wrong):
            raise
        raise Wrong("write the gradient from its formula: the check runs your function under "
                    f"torch.no_grad(), where autograd is off ({wrong})") from None


def _kd_gradient_mistakes(student_logits, teacher_logits, T: float) -> list[tuple[float, str]]:
    """The mistakes of ``ex-kd-gradient`` that scale the gradient: (factor, hint)."""
    b, c = student_logits.shape
    return [(-1.0, "the sign is flipped: it is q − p, the student's softened distribution minus the teacher's"),
            (1 / T, "off by a factor 1/T: T² from the loss times 1/T from the chain rule through z/T leaves T"),
            (float(T), "off by a factor T: you kept T² and forgot the 1/T of the chain rule through z/T"),
            (1 / T**2, "off by a factor 1/T²: that is the gradient of the KL alone, without the loss's T²"),
            (float(b), f"off by a factor B = {b}: the loss averages over the batch, so divide by B"),
            (1 / c, f"off by a factor 1/C = 1/{c}: sum over the classes is in the loss, not a mean")]


def _kd_gradient_mistake(answer, z, v, T) -> str:
    """What a gradient that differs from autograd's got wrong."""
    if torch.allclose(answer, _kd_gradient(z * T, v * T, T), rtol=1e-4, atol=1e-7):
        return "the logits were not divided by T inside the softmax"
    hint = named_mistake(answer, _kd_gradient(z, v, T), _kd_gradient_mistakes(z, v, T))
    return hint or "compare it with T·(softmax(z/T) − softmax(v/T))/B"


def _logit_matching_gradient(student_logits, teacher_logits) -> torch.Tensor:
    """(z − v)/(N·B), the gradient of logit matching (1/B) Σ_b ½·mean_c (z − v)² of (B, N) logits."""
    b, n = student_logits.shape
    return (student_logits - teacher_logits) / (n * b)


def _logit_matching_mistakes(student_logits, teacher_logits) -> list[tuple[float, str]]:
    """The mistakes of logit matching's gradient (``ex-kd-gradient``'s second part): (factor, hint)."""
    b, n = student_logits.shape
    return [(-1.0, "the sign is flipped: it is z − v, student minus teacher"),
            (float(n), f"off by a factor N = {n}: the ½·mean over the N classes divides by N"),
            (float(b), f"off by a factor B = {b}: average over the batch"),
            (float(n * b), "off by N·B: divide by the number of classes and by the batch size"),
            (2.0, "off by a factor 2: the ½ of ½(z − v)² cancels the 2 of the square")]


def _check_logit_matching(fn, z, v) -> None:
    """Raise :class:`Wrong` unless ``fn(z, v)`` is logit matching's gradient."""
    expected = _logit_matching_gradient(z, v)
    try:
        answer = _gradient_answer(fn, (z, v), expected.shape)
    except Wrong as wrong:
        raise Wrong(f"logit matching: {wrong}") from None
    if not torch.allclose(answer, expected, rtol=1e-4, atol=1e-8):
        hint = named_mistake(answer, expected, _logit_matching_mistakes(z, v))
        raise Wrong("logit matching: " + (hint or "expected (z − v) / (N·B)"))


def _high_temperature_table(kd, matching, z, v) -> str:
    """‖g_KD(T) − g_LM‖ / ‖g_LM‖ at rising T, for zero-mean logits and for shifted teacher rows."""
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)
    shifted = v + torch.arange(len(v), dtype=v.dtype).view(-1, 1)  # row b shifted by b
    rows = []
    with torch.no_grad():
        for T in (1.0, 5.0, 20.0, 100.0):
            gaps = [((kd(z, t, T) - matching(z, t)).norm() / matching(z, t).norm()).item()
                    for t in (v, shifted)]
            rows.append(f"T = {T:>5g}: {gaps[0]:6.1%} (zero-mean logits), {gaps[1]:6.1%} (teacher rows shifted)")
    return "\n  ".join(rows)


@check
def check_kd_gradient(fn, logit_matching=None):
    """Exercise ``ex-kd-gradient``: ``fn(student_logits, teacher_logits, T)`` -> the (B, C)
    gradient of the T²-scaled soft cross-entropy with respect to the student logits,
    written from its formula T·(softmax(z/T) − softmax(v/T))/B (Hinton et al. 2015, §2.1),
    checked against autograd at T = 4, 1 and 20.

    With ``logit_matching(student_logits, teacher_logits)`` -> (z − v)/(N·B), the gradient
    of logit matching (1/B) Σ_b ½·mean_c (z − v)², the check also shows how close the two
    come as T grows: for zero-mean logits KD's gradient tends to logit matching's, for
    logits whose means differ it does not (a softmax ignores a shift of its row)."""
    z, v = _logits(4)
    for T in (4.0, 1.0, 20.0):
        answer = _gradient_answer(fn, (z, v, T), z.shape)
        if not torch.allclose(answer, _autograd_kd_gradient(z, v, T), rtol=1e-4, atol=1e-7):
            raise Wrong(f"at T={T:g} your gradient differs from autograd's: {_kd_gradient_mistake(answer, z, v, T)}")
    if logit_matching is None:
        return "equal to autograd's gradient at T = 4, 1 and 20."
    _check_logit_matching(logit_matching, z, v)
    table = _high_temperature_table(fn, logit_matching, z, v)
    return f"both gradients are right. Distance of KD's gradient from logit matching's, relative:\n  {table}"
