"""Automatic checks for the exercises at the end of each chapter.

Each ``check_*`` function runs the learner's answer on fixed inputs, compares it with
the package's reference, and returns a :class:`CheckResult` that says *what* is wrong
(a missing T², a wrong reduction, a wrong axis...), not only that something is. A
check never raises on a wrong answer, so a chapter can be run top to bottom before
the exercises are done; ``result.passed`` (or ``bool(result)``) tells the outcome and
``result.require()`` raises for graders that want an exception.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .losses import info_nce_loss, kd_loss
from .models import CifarResNet, count_parameters

__all__ = ["CheckResult", "check_resnet_parameters", "check_soft_targets", "check_soft_cross_entropy", "check_regressor",
           "check_attention_map", "check_abs_attention_map", "check_fsp_matrix", "check_weighted_fsp_loss",
           "check_queue_info_nce", "check_info_nce", "check_hcl_level",
           "ordering_agreement", "check_ordering_agreement", "matching_layers", "check_matching_layers",
           "soft_cross_entropy"]


@dataclass
class CheckResult:
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("✔ " if self.passed else "✘ ") + self.message

    def require(self) -> None:
        """Raise ``AssertionError`` with the message unless the answer passed."""
        if not self.passed:
            raise AssertionError(self.message)


def _report(result: CheckResult) -> CheckResult:
    print(repr(result))
    return result


def _tensor_answer(fn, args, expected_shape, shape_hint: str):
    """Run the learner's function and check it returns a tensor of ``expected_shape``;
    returns ``(answer, None)`` or ``(None, failed CheckResult)``."""
    answer, failure = _call(fn, *args)
    if failure is not None:
        return None, failure
    if not isinstance(answer, torch.Tensor):
        return None, CheckResult(False, f"return a tensor; got {type(answer).__name__}")
    if answer.shape != expected_shape:
        return None, CheckResult(False, f"shape {tuple(answer.shape)}; expected {tuple(expected_shape)}{shape_hint}")
    return answer, None


def _scalar_answer(fn, args, hint: str = ""):
    """Run the learner's function and check it returns a one-element tensor;
    returns ``(answer as a 0-d tensor, None)`` or ``(None, failed CheckResult)``."""
    answer, failure = _call(fn, *args)
    if failure is not None:
        return None, failure
    if not isinstance(answer, torch.Tensor) or answer.numel() != 1:
        return None, CheckResult(False, f"return a scalar tensor{hint}")
    return answer.reshape(()), None


def _call(fn, *args):
    """Run the learner's function; turn an exception into a failed check."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, CheckResult(False, "not answered yet: the function raises NotImplementedError. "
                                        "Write its body and run the check again.")
    except Exception as error:  # the learner's code may fail in any way: say how
        return None, CheckResult(False, f"your function raised {type(error).__name__}: {error}")


# ----------------------------------------------------------------- chapter 1
def check_resnet_parameters(fn) -> CheckResult:
    """Exercise 1: ``fn(blocks, widths, num_classes)`` counts a CIFAR ResNet's parameters.

    ``widths`` is (stem, stage1, stage2, stage3), e.g. (16, 16, 32, 64) for resnet8.
    """
    cases = [(1, (16, 16, 32, 64), 10), (3, (16, 16, 32, 64), 10), (1, (32, 64, 128, 256), 100)]
    for blocks, widths, classes in cases:
        expected = count_parameters(CifarResNet(blocks, widths, classes))
        answer, failure = _call(fn, blocks, widths, classes)
        if failure is not None:
            return _report(failure)
        if not isinstance(answer, int):
            return _report(CheckResult(False, f"return an int; got {type(answer).__name__} ({answer!r})"))
        if answer == expected:
            continue
        where = f"for blocks={blocks}, widths={widths}, num_classes={classes}"
        stem, *stages = widths
        bn = 2 * (stem + sum(2 * w * blocks for w in stages))  # BN weight + bias everywhere
        diff = expected - answer
        hint = "count every convolution (3×3, no bias), BatchNorm (weight and bias) and the classifier"
        if diff == classes:
            hint = "the classifier (a Linear layer) has a bias too: add num_classes"
        elif diff > 0 and diff % 2 == 0 and diff <= bn + 4 * sum(stages):
            hint = ("some BatchNorm parameters are missing: each BatchNorm2d(C) has 2·C "
                    "(weight and bias), including those of the 1×1 projection shortcuts")
        elif diff > 0:
            hint = ("a stage whose width or stride changes starts with a 1×1 projection "
                    "shortcut (conv + BatchNorm); did you count it?")
        return _report(CheckResult(False, f"{where} you count {answer:,} but the model has "
                                          f"{expected:,} ({diff:+,}). Hint: {hint}."))
    return _report(CheckResult(True, "correct for resnet8, resnet20 and resnet8x4 (100 classes)."))


# ----------------------------------------------------------------- chapter 2
def _logits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 10, generator=g) * 3, torch.randn(6, 10, generator=g) * 3


def check_soft_targets(fn) -> CheckResult:
    """Exercise 2.1: ``fn(logits, T)`` -> softmax(logits / T) over classes, (B, C), written
    with ``exp`` and ``sum`` only and numerically stable for large logits."""
    logits, _ = _logits()
    cases = [(logits, 1.0), (logits, 4.0), (logits * 300, 1.0)]  # the last overflows a naive exp
    for z, T in cases:
        expected = F.softmax(z / T, dim=1)
        answer, failure = _tensor_answer(fn, (z, T), expected.shape, " (one distribution per row)")
        if failure is not None:
            return _report(failure)
        if torch.allclose(answer, expected, atol=1e-6):
            continue
        if not torch.isfinite(answer).all():
            return _report(CheckResult(False, f"NaN or inf for logits as large as {z.abs().max():.0f}: "
                                              "exp overflows. Subtract each row's maximum from the "
                                              "logits before exp; the result does not change"))
        if torch.allclose(answer, F.softmax(z, dim=1), atol=1e-6):
            return _report(CheckResult(False, f"at T={T} you return softmax(logits): divide the "
                                              "logits by T *before* the softmax"))
        if torch.allclose(answer, F.softmax(z, dim=1) / T, atol=1e-6):
            return _report(CheckResult(False, "you divide the probabilities by T; divide the "
                                              "logits by T before the softmax, so each row still sums to 1"))
        if torch.allclose(answer, F.softmax(z / T, dim=0), atol=1e-6):
            return _report(CheckResult(False, "the softmax runs over the batch (dim=0); it must "
                                              "run over the classes (dim=1)"))
        sums = answer.sum(1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
            return _report(CheckResult(False, f"rows must sum to 1; yours sum to {sums.tolist()}"))
        return _report(CheckResult(False, f"at T={T} the values differ from softmax(logits / T) "
                                          f"by up to {(answer - expected).abs().max():.3g}"))
    return _report(CheckResult(True, "correct at T=1 and T=4, and stable for large logits."))


def soft_cross_entropy(student_logits, teacher_logits, T: float):
    """T² · (1/B) Σ_b Σ_c −p_t[b,c] · log q_s[b,c]: Hinton's soft-target cross-entropy."""
    p = F.softmax(teacher_logits / T, dim=1)
    return -(p * F.log_softmax(student_logits / T, dim=1)).sum(1).mean() * T * T


def check_soft_cross_entropy(fn) -> CheckResult:
    """Exercise 2.2: ``fn(student_logits, teacher_logits, T)`` -> the soft-target
    cross-entropy of Hinton et al., T² · mean over the batch of −Σ_c p_t log q_s."""
    student, teacher = _logits(1)
    b, c = student.shape
    T = 4.0
    expected = soft_cross_entropy(student, teacher, T)
    answer, failure = _call(fn, student, teacher, T)
    if failure is not None:
        return _report(failure)
    if not isinstance(answer, torch.Tensor) or answer.numel() != 1:
        shape = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        return _report(CheckResult(False, f"return a scalar tensor; got {shape}: sum over "
                                          "classes, then average over the batch"))
    answer = answer.reshape(())
    if torch.allclose(answer, expected, rtol=1e-4):
        return _report(CheckResult(True, f"correct: {answer.item():.4f} at T={T:g}."))
    if torch.allclose(answer, kd_loss(student, teacher, T), rtol=1e-4):
        return _report(CheckResult(False, "that is the KL divergence (kd_loss); the cross-entropy "
                                          "is larger by the teacher's entropy: use −Σ p·log q"))
    ratio = (answer / expected).item()
    known = {
        1 / T**2: "the T² factor is missing: the soft term's gradients shrink as 1/T², T² restores their size",
        T**2: "you multiply by T² twice, or by T⁴",
        1 / c: "you average over classes too; sum over classes, average over the batch",
        1 / (c * T**2): "the T² factor is missing and you average over classes",
        float(b): "you sum over the batch; average over it",
        float(b) / T**2: "you sum over the batch and the T² factor is missing",
    }
    for factor, hint in known.items():
        if abs(ratio - factor) < 1e-3 * max(1.0, factor):
            return _report(CheckResult(False, f"off by a factor {ratio:.4g}: {hint}."))
    if torch.allclose(answer, soft_cross_entropy(teacher, student, T), rtol=1e-4):
        return _report(CheckResult(False, "student and teacher are swapped: the teacher's soft "
                                          "targets p weight the student's log-probabilities log q"))
    if torch.allclose(answer, soft_cross_entropy(student, teacher, 1.0) * T * T, rtol=1e-4):
        return _report(CheckResult(False, "the logits were not divided by T before the softmax"))
    return _report(CheckResult(False, f"expected {expected.item():.4f}, got {answer.item():.4f}; "
                                      "check which distribution is the target, the temperature "
                                      "and the reductions"))


# ----------------------------------------------------------------- chapter 3
def check_regressor(fn) -> CheckResult:
    """Exercise 3.1: ``fn(student_shape, teacher_shape)`` -> an ``nn.Module`` mapping
    (B, C_s, H_s, W_s) to (B, C_t, H_t, W_t) for H_s = H_t, 2·H_t and H_t / 2."""
    from torch import nn

    cases = [((16, 16, 16), (32, 16, 16)), ((16, 32, 32), (32, 16, 16)), ((16, 8, 8), (32, 16, 16)),
             ((8, 10, 10), (64, 8, 8))]
    for student_shape, teacher_shape in cases:
        module, failure = _call(fn, student_shape, teacher_shape)
        if failure is not None:
            return _report(failure)
        if not isinstance(module, nn.Module):
            return _report(CheckResult(False, f"return an nn.Module; got {type(module).__name__}"))
        try:
            out = module.train()(torch.randn(2, *student_shape))
        except Exception as error:
            return _report(CheckResult(False, f"your regressor for {student_shape} -> {teacher_shape} "
                                              f"fails on a (2, {', '.join(map(str, student_shape))}) batch: {error}"))
        if tuple(out.shape[1:]) != teacher_shape:
            hint = ("match the channels with the convolution's out_channels" if out.shape[1] != teacher_shape[0]
                    else "a stride-2 convolution halves the size, a transposed one doubles it, and a "
                         "convolution without padding shrinks it by kernel − 1")
            return _report(CheckResult(False, f"for a guided layer {student_shape} and a hint {teacher_shape} "
                                              f"your regressor outputs {tuple(out.shape[1:])}: {hint}"))
        if not any(p.requires_grad for p in module.parameters()):
            return _report(CheckResult(False, "the regressor has no trainable parameters"))
    return _report(CheckResult(True, "maps equal, larger, smaller and odd-sized guided layers to the hint's shape."))


# ----------------------------------------------------------------- chapter 4
def _first_wrong_power(fn, feat, powers, reference, shape_hint: str):
    """Run ``fn(feat, p)`` for each p: ``(failure, None, None)`` for a call that fails or
    has the wrong shape, ``(None, p, answer)`` at the first p whose maps differ from
    ``reference(feat, p)``, ``(None, None, None)`` when every p matches."""
    for p in powers:
        expected = reference(feat, p)
        answer, failure = _tensor_answer(fn, (feat, p), expected.shape, shape_hint)
        if failure is not None:
            return failure, None, None
        if not torch.allclose(answer, expected, atol=1e-5):
            return None, p, answer
    return None, None, None


def check_attention_map(fn) -> CheckResult:
    """Exercise 4.1: ``fn(feat, p)`` -> the (B, H·W) attention maps of (B, C, H, W) features."""
    from .losses import attention_map

    g = torch.Generator().manual_seed(0)
    feat = torch.randn(3, 5, 4, 4, generator=g) * torch.tensor([1.0, 10.0, 0.1]).view(3, 1, 1, 1)
    failure, p, answer = _first_wrong_power(fn, feat, (2, 4), attention_map,
                                            ": average over channels, then flatten H and W into one axis")
    if failure is not None:
        return _report(failure)
    if p is not None:
        expected = attention_map(feat, p)
        unnormalised = feat.pow(p).mean(1).flatten(1)
        batch_normalised = unnormalised / unnormalised.norm()
        if torch.allclose(answer, batch_normalised, atol=1e-5):
            return _report(CheckResult(False, "you normalise the whole batch at once; normalise each "
                                              "image's map on its own (norm over dim=1)"))
        if torch.allclose(answer, unnormalised, atol=1e-5) or torch.allclose(answer, feat.pow(p).sum(1).flatten(1), atol=1e-4):
            return _report(CheckResult(False, "the maps are not normalised: divide each row by its L2 norm"))
        if torch.allclose(answer, F.normalize(feat.abs().mean(1).flatten(1), dim=1), atol=1e-5):
            return _report(CheckResult(False, f"at p={p} you average |A| without the power p"))
        return _report(CheckResult(False, f"at p={p} your maps differ from the reference by up to "
                                          f"{(answer - expected).abs().max():.3g}"))
    return _report(CheckResult(True, "correct for p=2 and p=4, one unit-length map per image."))


def _abs_attention(feat: torch.Tensor, p: float) -> torch.Tensor:
    """The reference of exercise 4.3 (not printed in the chapter): F = mean_c |A_c|^p."""
    return F.normalize(feat.abs().pow(p).mean(1).flatten(1), dim=1)


def check_abs_attention_map(fn) -> CheckResult:
    """Exercise 4.3: ``fn(feat, p)`` -> (B, H·W) maps of F(A) = mean_c |A_c|^p, each row of
    unit L2 norm: the paper's family of attention functions, for features that can be
    negative (taken before the ReLU), at any p > 0 (odd and fractional included)."""
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(3, 6, 4, 4, generator=g)  # signed, as a pre-activation map is
    failure, p, answer = _first_wrong_power(fn, feat, (1, 3, 0.5), _abs_attention,
                                            ": one flattened H·W map per image")
    if failure is not None:
        return _report(failure)
    if p is not None:
        expected = _abs_attention(feat, p)
        if p != 0.5 and torch.allclose(answer, F.normalize(feat.pow(p).mean(1).flatten(1), dim=1), atol=1e-5):
            return _report(CheckResult(False, f"at p={p} you raise A itself to the power: negative activations "
                                              "then cancel positive ones; take |A| first"))
        if torch.isnan(answer).any():
            return _report(CheckResult(False, f"at p={p} your maps hold NaN: a fractional power of a negative "
                                              "number; take |A| first"))
        if torch.allclose(answer, feat.abs().pow(p).mean(1).flatten(1), atol=1e-5):
            return _report(CheckResult(False, "the maps are not normalised: divide each row by its L2 norm"))
        return _report(CheckResult(False, f"at p={p} your maps differ from mean_c |A_c|^p, normalised, by up to "
                                          f"{(answer - expected).abs().max():.3g}"))
    return _report(CheckResult(True, "correct for p = 1, 3 and 0.5 on signed features."))


# ----------------------------------------------------------------- chapter 5
def _weighted_fsp(student_pairs, teacher_pairs, weights) -> torch.Tensor:
    """The reference of exercise 5.3: Σ_i λ_i · mean (G_i^S − G_i^T)²."""
    from .losses import fsp_matrix

    return sum(w * (fsp_matrix(*s) - fsp_matrix(*t)).pow(2).mean()
               for w, s, t in zip(weights, student_pairs, teacher_pairs))


def check_weighted_fsp_loss(fn) -> CheckResult:
    """Exercise 5.3: ``fn(student_pairs, teacher_pairs, weights)`` -> Σ_i λ_i ·
    mean((G_i^S − G_i^T)²) over pairs of maps, the larger map of a pair pooled to the
    smaller (``losses.fsp_matrix`` may be used)."""
    g = torch.Generator().manual_seed(2)
    shapes = [((2, 4, 8, 8), (2, 4, 8, 8)), ((2, 4, 8, 8), (2, 6, 4, 4))]
    student = [tuple(torch.randn(*s, generator=g) for s in pair) for pair in shapes]
    teacher = [tuple(torch.randn(*s, generator=g) for s in pair) for pair in shapes]
    weights = (0.25, 4.0)
    expected = _weighted_fsp(student, teacher, weights)
    answer, failure = _scalar_answer(fn, (student, teacher, weights), " (one number for all pairs)")
    if failure is not None:
        return _report(failure)
    if torch.allclose(answer, expected, rtol=1e-4):
        return _report(CheckResult(True, f"correct: {answer.item():.4f}."))
    if torch.allclose(answer, _weighted_fsp(student, teacher, (1.0, 1.0)), rtol=1e-4):
        return _report(CheckResult(False, "the weights are ignored: multiply pair i's term by weights[i]"))
    if torch.allclose(answer, _weighted_fsp(student, teacher, weights[::-1]), rtol=1e-4):
        return _report(CheckResult(False, "the weights are applied to the wrong pairs: weights[i] goes with pair i"))
    if torch.allclose(answer, _weighted_fsp(student, teacher, weights) / 2, rtol=1e-4):
        return _report(CheckResult(False, "you average over the pairs; the loss sums them"))
    return _report(CheckResult(False, f"expected {expected.item():.4f}, got {answer.item():.4f}: is the 8×8 map "
                                      "of the second pair pooled to 4×4 before its Gram matrix?"))


def check_fsp_matrix(fn) -> CheckResult:
    """Exercise 5.1: ``fn(f1, f2)`` -> the (B, C1, C2) FSP matrices of two maps of equal size."""
    from .losses import fsp_matrix

    g = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 5, 4, 4, generator=g)
    expected = fsp_matrix(f1, f2)
    answer, failure = _call(fn, f1, f2)
    if failure is not None:
        return _report(failure)
    if not isinstance(answer, torch.Tensor):
        return _report(CheckResult(False, f"return a tensor; got {type(answer).__name__}"))
    if answer.shape == (2, 5, 3) and torch.allclose(answer.transpose(1, 2), expected, atol=1e-5):
        return _report(CheckResult(False, "you return the transpose, (B, C2, C1): the paper's layout is "
                                          "G[b, i, j] with i a channel of f1 and j a channel of f2"))
    if answer.shape != expected.shape:
        return _report(CheckResult(False, f"shape {tuple(answer.shape)}; expected {tuple(expected.shape)} "
                                          "= (B, channels of f1, channels of f2)"))
    if torch.allclose(answer, expected * 16, atol=1e-4):
        return _report(CheckResult(False, "you sum over the H·W positions; divide by H·W (the mean)"))
    if torch.allclose(answer, expected, atol=1e-5):
        return _report(CheckResult(True, "correct: G[b, i, j] = mean over positions of f1[b, i] · f2[b, j]."))
    return _report(CheckResult(False, f"your matrices differ from the reference by up to "
                                      f"{(answer - expected).abs().max():.3g}"))


# ----------------------------------------------------------------- chapter 6
def check_info_nce(fn) -> CheckResult:
    """Exercise 6.1: ``fn(student_embed, teacher_embed, tau)`` -> the symmetric in-batch
    InfoNCE loss: the mean of the two cross-entropies over the (B, B) similarity logits."""
    g = torch.Generator().manual_seed(0)
    s = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    t = F.normalize(s + 0.5 * torch.randn(8, 16, generator=g), dim=1)
    tau = 0.1
    logits = s @ t.t() / tau
    targets = torch.arange(8)
    one_way = F.cross_entropy(logits, targets)
    other_way = F.cross_entropy(logits.t(), targets)
    expected = info_nce_loss(s, t, tau)  # the mean of one_way and other_way
    answer, failure = _scalar_answer(fn, (s, t, tau), " (the mean over the batch)")
    if failure is not None:
        return _report(failure)
    if torch.allclose(answer, expected, rtol=1e-4):
        return _report(CheckResult(True, f"correct: {answer.item():.4f}."))
    if torch.allclose(answer, one_way, rtol=1e-4) or torch.allclose(answer, other_way, rtol=1e-4):
        return _report(CheckResult(False, "only one direction: average the student→teacher and the "
                                          "teacher→student cross-entropies"))
    if torch.allclose(answer, info_nce_loss(s, t, 1.0), rtol=1e-4):
        return _report(CheckResult(False, "the similarities are not divided by the temperature tau"))
    return _report(CheckResult(False, f"expected {expected.item():.4f}, got {answer.item():.4f}: the "
                                      "positives are on the diagonal of the (B, B) logits"))


def _queue_info_nce(student_embed, teacher_embed, queue, tau):
    """The reference of exercise 6.3: each student embedding against its own teacher
    embedding (the positive) and every embedding of the queue (the negatives)."""
    positives = (student_embed * teacher_embed).sum(1, keepdim=True)  # (B, 1)
    negatives = student_embed @ queue.t()                              # (B, Q)
    logits = torch.cat([positives, negatives], dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


def check_queue_info_nce(fn) -> CheckResult:
    """Exercise 6.3: ``fn(student_embed, teacher_embed, queue, tau)`` -> InfoNCE of each
    student embedding against its teacher embedding and a queue of Q past teacher
    embeddings (MoCo's memory; CRD's bank plays the same part): (B, d), (B, d), (Q, d)."""
    g = torch.Generator().manual_seed(3)
    s = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    t = F.normalize(s + 0.3 * torch.randn(6, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    tau = 0.2
    expected = _queue_info_nce(s, t, queue, tau)
    answer, failure = _scalar_answer(fn, (s, t, queue, tau), " (the mean over the batch)")
    if failure is not None:
        return _report(failure)
    if torch.allclose(answer, expected, rtol=1e-4):
        return _report(CheckResult(True, f"correct: {answer.item():.4f}."))
    if torch.allclose(answer, _queue_info_nce(s, t, queue, 1.0), rtol=1e-4):
        return _report(CheckResult(False, "the similarities are not divided by the temperature tau"))
    in_batch = torch.cat([t, queue])
    if torch.allclose(answer, F.cross_entropy(s @ in_batch.t() / tau, torch.arange(6)), rtol=1e-4):
        return _report(CheckResult(False, "the other images of the batch are negatives too in your loss; "
                                          "here the negatives are the queue only"))
    if torch.allclose(answer, _queue_info_nce(s, t, queue[:0], tau), rtol=1e-4):
        return _report(CheckResult(False, "the queue is missing: its Q embeddings are the negatives"))
    return _report(CheckResult(False, f"expected {expected.item():.4f}, got {answer.item():.4f}: the positive "
                                      "is column 0 of the (B, 1 + Q) logits"))


# ----------------------------------------------------------------- chapter 7
def check_hcl_level(fn) -> CheckResult:
    """Exercise 7.1: ``fn(fs, ft)`` -> ReviewKD's HCL for one level (see ``losses.hcl_loss``)."""
    from .losses import hcl_loss

    g = torch.Generator().manual_seed(0)
    for size in (8, 4, 1):
        fs, ft = torch.randn(2, 3, size, size, generator=g), torch.randn(2, 3, size, size, generator=g)
        expected = hcl_loss([fs], [ft])
        answer, failure = _scalar_answer(fn, (fs, ft))
        if failure is not None:
            return _report(failure)
        if torch.allclose(answer, expected, rtol=1e-4):
            continue
        if torch.allclose(answer, F.mse_loss(fs, ft), rtol=1e-4) and size > 1:
            return _report(CheckResult(False, f"at {size}×{size} you return the plain MSE: add the "
                                              "MSEs of the maps pooled to 4×4, 2×2 and 1×1 (smaller than the map)"))
        return _report(CheckResult(False, f"at {size}×{size}: expected {expected.item():.4f}, got "
                                          f"{answer.item():.4f}; pool only to sizes smaller than the map, "
                                          "halve the weight at each pooled level, divide by the sum of weights"))
    return _report(CheckResult(True, "correct at 8×8, 4×4 and 1×1."))


# ----------------------------------------------------------------- chapter 8
def ordering_agreement(ours: dict[str, float], theirs: dict[str, float]) -> float:
    """Fraction of method pairs ordered the same way by two {method: accuracy} dicts
    (ties count as disagreement)."""
    from itertools import combinations

    pairs = list(combinations(sorted(set(ours) & set(theirs)), 2))
    if not pairs:
        raise ValueError("ordering_agreement: the two dicts share fewer than two methods")
    return sum((ours[a] - ours[b]) * (theirs[a] - theirs[b]) > 0 for a, b in pairs) / len(pairs)


def check_ordering_agreement(fn) -> CheckResult:
    """Exercise 8.1: ``fn(ours, theirs)`` -> the fraction of pairs ordered alike."""
    cases = [({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 3.0, "c": 2.0}),
             ({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}),
             ({"a": 1.0, "b": 1.0, "c": 2.0}, {"a": 1.0, "b": 2.0, "c": 3.0})]
    for ours, theirs in cases:
        expected = ordering_agreement(ours, theirs)
        answer, failure = _call(fn, ours, theirs)
        if failure is not None:
            return _report(failure)
        try:
            answer = float(answer)
        except (TypeError, ValueError):
            return _report(CheckResult(False, f"return a number between 0 and 1; got {answer!r}"))
        if abs(answer - expected) > 1e-9:
            hint = ("count each unordered pair once" if abs(answer - 2 * expected) < 1e-9 or
                    abs(answer * 2 - expected) < 1e-9 else "a tie in either ranking counts as disagreeing")
            return _report(CheckResult(False, f"for {ours} and {theirs} expected {expected:.3f}, got "
                                              f"{answer:.3f}: {hint}"))
    return _report(CheckResult(True, "correct, ties included."))


# ----------------------------------------------------------------- chapter 9
def matching_layers(teacher_shapes: dict[str, tuple], student_shapes: dict[str, tuple]) -> dict[str, str]:
    """For each teacher layer with a (C, H, W) output, the *last* student layer (in order)
    whose output has the same H × W; teacher layers without such a student layer are left out."""
    pairs = {}
    for t_name, t_shape in teacher_shapes.items():
        same = [s_name for s_name, s_shape in student_shapes.items()
                if len(s_shape) == 3 and len(t_shape) == 3 and s_shape[1:] == t_shape[1:]]
        if same:
            pairs[t_name] = same[-1]
    return pairs


def check_matching_layers(fn) -> CheckResult:
    """Exercise 9.1: ``fn(teacher_shapes, student_shapes)`` -> {teacher layer: student layer}."""
    teacher = {"stem": (64, 8, 8), "layer1": (64, 8, 8), "layer2": (128, 4, 4), "layer3": (256, 2, 2),
               "fc": (10,)}
    student = {"f0": (16, 16, 16), "f1": (16, 8, 8), "f2": (24, 4, 4), "f3": (24, 4, 4), "f4": (40, 1, 1),
               "pool": (40, 1, 1), "head": (10,)}
    expected = matching_layers(teacher, student)
    answer, failure = _call(fn, teacher, student)
    if failure is not None:
        return _report(failure)
    if not isinstance(answer, dict):
        return _report(CheckResult(False, f"return a dict {{teacher layer: student layer}}; got {type(answer).__name__}"))
    if answer.get("layer2") == "f2":
        return _report(CheckResult(False, "layer2 pairs with f2, but f3 has the same 4×4 size and is "
                                          "deeper: take the last student layer of that size"))
    if "fc" in answer or "layer3" in answer:
        return _report(CheckResult(False, "only (C, H, W) maps pair up, and only with a student map of "
                                          "the same H × W: leave out layers without one (fc, layer3 here)"))
    if answer != expected:
        return _report(CheckResult(False, f"expected {expected}, got {answer}"))
    return _report(CheckResult(True, f"correct: {expected}"))
