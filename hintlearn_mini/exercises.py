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
           "check_queue_info_nce", "check_info_nce", "check_hcl_level", "check_kd_gradient",
           "check_hint_regressor", "check_hcl_levels", "check_paper_at_loss", "check_fsp_correlation",
           "check_masked_info_nce", "check_kendall_tau",
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


def _float_answer(fn, args, what: str):
    """Run the learner's function and read its answer as a float;
    returns ``(answer, None)`` or ``(None, failed CheckResult)``."""
    answer, failure = _call(fn, *args)
    if failure is not None:
        return None, failure
    try:
        return float(answer), None
    except (TypeError, ValueError):
        return None, CheckResult(False, f"return {what}; got {answer!r}")


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


def _kd_gradient(student_logits, teacher_logits, T: float) -> torch.Tensor:
    """The reference of exercise 2.3 (not printed in the chapter): the gradient of
    T² · (1/B) Σ_b −Σ_c p_c(T) log q_c(T) with respect to the student logits z,
    T · (softmax(z/T) − softmax(v/T)) / B (Hinton et al. 2015, §2.1, eq. 2, times T²)."""
    q = F.softmax(student_logits / T, dim=1)
    p = F.softmax(teacher_logits / T, dim=1)
    return T * (q - p) / len(student_logits)


def _autograd_kd_gradient(student_logits, teacher_logits, T: float) -> torch.Tensor:
    z = student_logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        soft_cross_entropy(z, teacher_logits, T).backward()
    return z.grad


def _gradient_answer(fn, args, shape) -> tuple:
    """Run ``fn`` under ``torch.no_grad()`` (an analytic gradient needs no autograd):
    ``(answer, None)`` or ``(None, failed CheckResult)``."""
    with torch.no_grad():
        answer, failure = _tensor_answer(fn, args, shape, " (one gradient per logit)")
    if failure is not None and "grad" in failure.message:
        failure = CheckResult(False, "write the gradient from its formula: the check runs your function "
                                     f"under torch.no_grad(), where autograd is off ({failure.message})")
    return answer, failure


def _factor(answer: torch.Tensor, expected: torch.Tensor) -> float | None:
    """The constant c with answer = c · expected, or None if there is none."""
    c = float((answer * expected).sum() / expected.pow(2).sum())
    return c if torch.allclose(answer, c * expected, rtol=1e-4, atol=1e-7) else None


def _kd_gradient_mistake(answer, z, v, T) -> str:
    b, c = z.shape
    if torch.allclose(answer, _kd_gradient(z * T, v * T, T), rtol=1e-4, atol=1e-7):
        return "the logits were not divided by T inside the softmax"
    ratio = _factor(answer, _kd_gradient(z, v, T))
    known = {-1.0: "the sign is flipped: it is q − p, the student's softened distribution minus the teacher's",
             1 / T: "off by a factor 1/T: T² from the loss times 1/T from the chain rule through z/T leaves T",
             float(T): "off by a factor T: you kept T² and forgot the 1/T of the chain rule through z/T",
             1 / T**2: "off by a factor 1/T²: that is the gradient of the KL alone, without the loss's T²",
             float(b): f"off by a factor B = {b}: the loss averages over the batch, so divide by B",
             1 / c: f"off by a factor 1/C = 1/{c}: sum over the classes is in the loss, not a mean"}
    for factor, hint in known.items():
        if ratio is not None and abs(ratio - factor) < 1e-3 * max(1.0, abs(factor)):
            return hint
    return "compare it with T·(softmax(z/T) − softmax(v/T))/B"


def _check_logit_matching(fn, z, v) -> CheckResult | None:
    """None when ``fn(z, v)`` is (z − v)/(N·B), the gradient of (1/B) Σ_b ½·mean_c (z − v)²."""
    b, n = z.shape
    expected = (z - v) / (n * b)
    answer, failure = _gradient_answer(fn, (z, v), expected.shape)
    if failure is not None:
        return CheckResult(False, "logit matching: " + failure.message)
    if torch.allclose(answer, expected, rtol=1e-4, atol=1e-8):
        return None
    ratio = _factor(answer, expected)
    known = {-1.0: "the sign is flipped: it is z − v, student minus teacher",
             float(n): f"off by a factor N = {n}: the ½·mean over the N classes divides by N",
             float(b): f"off by a factor B = {b}: average over the batch",
             float(n * b): "off by N·B: divide by the number of classes and by the batch size",
             2.0: "off by a factor 2: the ½ of ½(z − v)² cancels the 2 of the square"}
    hint = next((h for f, h in known.items() if ratio is not None and abs(ratio - f) < 1e-3 * f), None)
    return CheckResult(False, "logit matching: " + (hint or "expected (z − v) / (N·B)"))


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


def check_kd_gradient(fn, logit_matching=None) -> CheckResult:
    """Exercise 2.3: ``fn(student_logits, teacher_logits, T)`` -> the (B, C) gradient of
    the T²-scaled soft cross-entropy with respect to the student logits, written from
    its formula T·(softmax(z/T) − softmax(v/T))/B (Hinton et al. 2015, §2.1), checked
    against autograd at T = 4, 1 and 20.

    With ``logit_matching(student_logits, teacher_logits)`` -> (z − v)/(N·B), the gradient
    of logit matching (1/B) Σ_b ½·mean_c (z − v)², the check also shows how close the two
    come as T grows: for zero-mean logits KD's gradient tends to logit matching's, for
    logits whose means differ it does not (a softmax ignores a shift of its row)."""
    z, v = _logits(4)
    for T in (4.0, 1.0, 20.0):
        answer, failure = _gradient_answer(fn, (z, v, T), z.shape)
        if failure is not None:
            return _report(failure)
        if not torch.allclose(answer, _autograd_kd_gradient(z, v, T), rtol=1e-4, atol=1e-7):
            return _report(CheckResult(False, f"at T={T:g} your gradient differs from autograd's: "
                                              f"{_kd_gradient_mistake(answer, z, v, T)}"))
    if logit_matching is None:
        return _report(CheckResult(True, "equal to autograd's gradient at T = 4, 1 and 20."))
    failure = _check_logit_matching(logit_matching, z, v)
    if failure is not None:
        return _report(failure)
    table = _high_temperature_table(fn, logit_matching, z, v)
    return _report(CheckResult(True, "both gradients are right. Distance of KD's gradient from logit "
                                     f"matching's, relative:\n  {table}"))


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


_CONVS = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)


def _regressor_layers(module) -> list:
    """The convolutions, BatchNorms and ReLUs of a module, in the order they were added."""
    kinds = (*_CONVS, torch.nn.BatchNorm2d, torch.nn.ReLU)
    return [m for m in module.modules() if isinstance(m, kinds)]


def _conv_text(conv) -> str:
    return (f"{type(conv).__name__} kernel {tuple(conv.kernel_size)}, stride {tuple(conv.stride)}, "
            f"padding {tuple(conv.padding)}")


def _out_size(conv, h: int) -> int:
    """The output height of a convolution on a map h high: ⌊(h + 2p − k)/s⌋ + 1, or
    (h − 1)·s − 2p + k for a transposed one."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    if isinstance(conv, torch.nn.ConvTranspose2d):
        return (h - 1) * s - 2 * p + k
    return (h + 2 * p - k) // s + 1


def _regressor_mistake(layers, reference, shapes: str, height: int) -> str | None:
    """What differs between the learner's layers and ConvReg's, or None."""
    names = [type(m).__name__ for m in layers]
    if not layers or not isinstance(layers[0], _CONVS):
        return f"{shapes}: start with a Conv2d or ConvTranspose2d; your layers are {names}"
    conv, ref = layers[0], reference[0]
    if type(conv) is not type(ref) or (conv.kernel_size, conv.stride, conv.padding) != (
            ref.kernel_size, ref.stride, ref.padding):
        return (f"{shapes}: ConvReg uses a {_conv_text(ref)}; yours is a {_conv_text(conv)}, "
                f"whose output is {_out_size(conv, height)} high where the hint is {_out_size(ref, height)}")
    if (conv.in_channels, conv.out_channels) != (ref.in_channels, ref.out_channels):
        return (f"{shapes}: the convolution maps {conv.in_channels} to {conv.out_channels} channels; "
                f"it must map C_s = {ref.in_channels} to C_t = {ref.out_channels}")
    if conv.bias is None:
        return f"{shapes}: ConvReg's convolution keeps its bias (the default bias=True)"
    if names[1:] != ["BatchNorm2d", "ReLU"]:
        return (f"{shapes}: after the convolution come BatchNorm2d(C_t) and ReLU (ConvReg's use_relu=True, "
                f"as the hint is taken after a ReLU); your layers are {names}")
    return None


def _same_output(module, reference, student_shape) -> bool:
    """Whether the learner's regressor, given ConvReg's weights, computes ConvReg's output."""
    for mine, ref in zip(_regressor_layers(module), _regressor_layers(reference)):
        mine.load_state_dict(ref.state_dict())
    x = torch.randn(2, *student_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.allclose(module.train()(x), reference.train()(x), atol=1e-5)


def _refuses(fn, student_shape, teacher_shape) -> CheckResult | None:
    """None when ``fn`` raises a ValueError for shapes no ConvReg maps."""
    shapes = f"{student_shape} -> {teacher_shape}"
    try:
        fn(student_shape, teacher_shape)
    except ValueError:
        return None
    except Exception as error:
        return CheckResult(False, f"{shapes}: raise a ValueError naming both shapes; you raised "
                                  f"{type(error).__name__}: {error}")
    return CheckResult(False, f"{shapes}: no ConvReg maps a guided layer smaller than the hint (other than "
                              "half its size); raise a ValueError that names both shapes")


def check_hint_regressor(fn) -> CheckResult:
    """Exercise 3.1: ``fn(student_shape, teacher_shape)`` -> FitNets' regressor as
    RepDistiller's ConvReg (Tian et al. 2020; Romero et al. 2015 use a convolution whose
    kernel lands on the hint's size), from (C_s, H_s, W_s) to (C_t, H_t, W_t):

    * H_s = 2·H_t: Conv2d 3×3, stride 2, padding 1   (out = ⌊(H_s + 2 − 3)/2⌋ + 1 = H_t);
    * 2·H_s = H_t: ConvTranspose2d 4×4, stride 2, padding 1   (out = 2(H_s − 1) − 2 + 4);
    * H_s ≥ H_t and W_s ≥ W_t: Conv2d of kernel (1 + H_s − H_t) × (1 + W_s − W_t);
    * otherwise a ValueError;

    each convolution with its bias, then BatchNorm2d(C_t) and ReLU."""
    from torch import nn

    from .methods.fitnets import ConvRegressor

    cases = [((16, 16, 16), (32, 16, 16)), ((16, 32, 32), (32, 16, 16)), ((16, 8, 8), (32, 16, 16)),
             ((8, 10, 12), (64, 8, 8))]
    for student_shape, teacher_shape in cases:
        shapes = f"{student_shape} -> {teacher_shape}"
        module, failure = _call(fn, student_shape, teacher_shape)
        if failure is not None:
            return _report(failure)
        if isinstance(module, ConvRegressor):
            return _report(CheckResult(False, "that is the package's ConvRegressor: build yours from nn layers"))
        if not isinstance(module, nn.Module):
            return _report(CheckResult(False, f"return an nn.Module; got {type(module).__name__}"))
        reference = ConvRegressor(student_shape, teacher_shape)
        mistake = _regressor_mistake(_regressor_layers(module), _regressor_layers(reference), shapes,
                                     student_shape[1])
        if mistake is None and not _same_output(module, reference, student_shape):
            mistake = f"{shapes}: with ConvReg's weights your module computes another output: conv, BN, ReLU in turn"
        if mistake is not None:
            return _report(CheckResult(False, mistake))
    failure = _refuses(fn, (16, 4, 4), (32, 7, 7))
    if failure is not None:
        return _report(failure)
    return _report(CheckResult(True, "ConvReg for equal, double, half and larger odd-sized guided layers, "
                                     "and a ValueError where none exists."))


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


def _paper_at_loss(student_feats, teacher_feats, beta, squared=False) -> torch.Tensor:
    """The reference of the proposed exercise 4.1: the paper's AT term (Zagoruyko &
    Komodakis 2017, eq. 2), (β/2) · Σ_j mean_b ‖Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂‖₂ with
    Q = vec(Σ_c |A_c|²) of each tap j; ``squared`` squares the norm (a mistake)."""
    total = 0.0
    for fs, ft in zip(student_feats, teacher_feats):
        qs, qt = (F.normalize(f.pow(2).sum(1).flatten(1), dim=1) for f in (fs, ft))
        gap = (qs - qt).norm(dim=1)
        total = total + (gap.pow(2) if squared else gap).mean()
    return beta / 2 * total


def check_paper_at_loss(fn) -> CheckResult:
    """Proposed exercise 4.1: ``fn(student_feats, teacher_feats, beta)`` -> the paper's
    attention-transfer term over several taps, lists of (B, C, H, W) maps (channels may
    differ, sizes agree per tap): (β/2) Σ_j mean_b ‖q̂_S − q̂_T‖₂, a norm, not squared,
    where the official code uses β · mean((q̂_S − q̂_T)²)."""
    g = torch.Generator().manual_seed(8)
    shapes = [((4, 6, 8, 8), (4, 12, 8, 8)), ((4, 8, 4, 4), (4, 16, 4, 4))]
    student, teacher = zip(*[(torch.randn(*s, generator=g), torch.randn(*t, generator=g)) for s, t in shapes])
    beta = 1000.0
    expected = _paper_at_loss(student, teacher, beta)
    answer, failure = _scalar_answer(fn, (student, teacher, beta), " (one number for all taps)")
    if failure is not None:
        return _report(failure)
    if torch.allclose(answer, expected, rtol=1e-4):
        return _report(CheckResult(True, f"correct: {answer.item():.4f}."))
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    from .losses import at_loss

    code_form = beta * sum(at_loss(s, t) for s, t in zip(student, teacher))
    if close(code_form):
        return _report(CheckResult(False, "that is the official code's β · mean of squared differences; "
                                          "the paper takes the norm of each image's difference, times β/2"))
    if close(_paper_at_loss(student, teacher, beta, squared=True)):
        return _report(CheckResult(False, "the paper's norm is not squared: ‖q̂_S − q̂_T‖₂"))
    ratio = (answer / expected).item()
    known = {2.0: "the ½ of β/2 is missing", 2 / beta: "β/2 is missing", 1 / beta: "β is missing and so is ½",
             4.0: "you sum over the batch of 4 images; average over it"}
    for factor, hint in known.items():
        if abs(ratio - factor) < 1e-3 * factor:
            return _report(CheckResult(False, f"off by a factor {ratio:.4g}: {hint}"))
    return _report(CheckResult(False, f"expected {expected.item():.4f}, got {answer.item():.4f}: normalise "
                                      "each image's map, then take the L2 norm of the difference"))


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


def _fsp_correlation(f1, f2) -> torch.Tensor:
    """The reference of the proposed exercise 5.1: FSP matrices of cosine similarities,
    G[b, i, j] = ⟨f1[b, i], f2[b, j]⟩ / (‖f1[b, i]‖ · ‖f2[b, j]‖) over the H·W positions."""
    a, b = F.normalize(f1.flatten(2), dim=2), F.normalize(f2.flatten(2), dim=2)
    return a @ b.transpose(1, 2)


def check_fsp_correlation(fn) -> CheckResult:
    """Proposed exercise 5.1: ``fn(f1, f2)`` -> (B, C1, C2) FSP matrices normalised to
    cosine similarities (each entry in [−1, 1]), for two maps of the same H × W. Yim et
    al. 2017's matrix (eq. 1) is the mean of the products; dividing by the channel norms
    makes each entry independent of the scale of either map."""
    from .losses import fsp_matrix

    g = torch.Generator().manual_seed(9)
    f1 = torch.randn(2, 3, 4, 5, generator=g) * torch.tensor([1.0, 5.0, 0.2]).view(1, 3, 1, 1)
    f2 = torch.randn(2, 4, 4, 5, generator=g)
    expected = _fsp_correlation(f1, f2)
    answer, failure = _call(fn, f1, f2)
    if failure is not None:
        return _report(failure)
    if not isinstance(answer, torch.Tensor):
        return _report(CheckResult(False, f"return a tensor; got {type(answer).__name__}"))
    if answer.shape == (2, 4, 3):
        return _report(CheckResult(False, "you return the transpose, (B, C2, C1): G[b, i, j] pairs channel "
                                          "i of f1 with channel j of f2"))
    if answer.shape != expected.shape:
        return _report(CheckResult(False, f"shape {tuple(answer.shape)}; expected {tuple(expected.shape)}"))
    if torch.allclose(answer, expected, atol=1e-5):
        return _report(CheckResult(True, "correct: one cosine similarity per pair of channels."))
    if torch.allclose(answer, fsp_matrix(f1, f2), atol=1e-5):
        return _report(CheckResult(False, "that is the plain FSP matrix: divide each entry by the norms of "
                                          "the two channels over the H·W positions"))
    if torch.allclose(answer, expected / 20, atol=1e-5):
        return _report(CheckResult(False, "you also divide by H·W: the cosine needs only the two norms"))
    return _report(CheckResult(False, f"your matrices differ from the cosine similarities by up to "
                                      f"{(answer - expected).abs().max():.3g}: normalise each channel of "
                                      "each image on its own (over H·W, not over the batch)"))


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


def _masked_info_nce(student_embed, teacher_embed, labels, tau, fill=float("-inf"), own=False):
    """The reference of the proposed exercise 6.1: in-batch InfoNCE, student → teacher,
    where the other images of the same class are no negatives (their logits masked out);
    ``fill`` and ``own`` give the typical mistakes (masking with 0, masking the positive)."""
    logits = student_embed @ teacher_embed.t() / tau
    same = labels[:, None] == labels[None, :]
    if not own:
        same = same & ~torch.eye(len(labels), dtype=torch.bool)
    return F.cross_entropy(logits.masked_fill(same, fill), torch.arange(len(logits)))


def check_masked_info_nce(fn) -> CheckResult:
    """Proposed exercise 6.1: ``fn(student_embed, teacher_embed, labels, tau)`` -> the
    student → teacher in-batch InfoNCE (Tian et al. 2020's in-batch form) in which another
    image of the same class is not a negative: its logit is removed from the softmax.
    Shapes (B, d), (B, d) unit rows, (B,) labels."""
    g = torch.Generator().manual_seed(10)
    s = F.normalize(torch.randn(8, 6, generator=g), dim=1)
    t = F.normalize(s + 0.5 * torch.randn(8, 6, generator=g), dim=1)
    labels, tau = torch.tensor([0, 1, 0, 2, 1, 3, 0, 2]), 0.2
    expected = _masked_info_nce(s, t, labels, tau)
    answer, failure = _scalar_answer(fn, (s, t, labels, tau), " (the mean over the batch)")
    if failure is not None:
        return _report(failure)
    close = lambda other: torch.allclose(answer, other, rtol=1e-4)
    if close(expected):
        return _report(CheckResult(True, f"correct: {answer.item():.4f}."))
    mistakes = [(_masked_info_nce(s, t, torch.arange(8), tau),
                 "nothing is masked: the other images of the same class still act as negatives"),
                (_masked_info_nce(s, t, labels, tau, fill=0.0),
                 "a masked logit set to 0 still counts in the softmax (exp 0 = 1): set it to −inf"),
                (_masked_info_nce(s, t, labels, 1.0), "the similarities are not divided by tau")]
    for other, hint in mistakes:
        if close(other):
            return _report(CheckResult(False, hint))
    if not torch.isfinite(answer):
        return _report(CheckResult(False, "the loss is not finite: you masked the positive (the diagonal) too; "
                                          "mask only the *other* images of the same class"))
    return _report(CheckResult(False, f"expected {expected.item():.4f}, got {answer.item():.4f}: one direction, "
                                      "student rows against teacher columns, the positives on the diagonal"))


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


def _hcl_levels(fs, ft, levels, halve_used_only=True, skip_large=True, normalise=True) -> torch.Tensor:
    """The reference of exercise 7.1 (not printed in the chapter): ReviewKD's HCL of one
    level pair over the pyramid ``levels`` (Chen et al. 2021, official ``hcl``):
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


def check_hcl_levels(fn) -> CheckResult:
    """Exercise 7.1: ``fn(fs, ft, levels)`` -> HCL of one pair of (B, C, h, h) maps over
    the pyramid ``levels`` (largest first, e.g. (8, 4, 2, 1)), with the official rule of
    weights: 1 for the full map, then ½, ¼, ... for each level *smaller than h*, in order,
    the sum divided by the sum of the weights used (Chen et al. 2021; ``losses.hcl_loss``
    is levels (4, 2, 1))."""
    g = torch.Generator().manual_seed(7)
    cases = [(16, (8, 4, 2, 1)), (8, (8, 4, 2, 1)), (4, (2,)), (8, (6, 3)), (2, (4, 2, 1)), (1, (4, 2, 1))]
    for h, levels in cases:
        fs, ft = torch.randn(2, 3, h, h, generator=g), torch.randn(2, 3, h, h, generator=g)
        answer, failure = _scalar_answer(fn, (fs, ft, levels))
        if failure is not None:
            return _report(failure)
        expected = _hcl_levels(fs, ft, levels)
        if not torch.allclose(answer, expected, rtol=1e-4):
            return _report(CheckResult(False, f"{h}×{h} maps, levels {levels}: expected {expected.item():.4f}, got "
                                              f"{answer.item():.4f}: {_hcl_levels_mistake(answer, fs, ft, levels)}"))
    return _report(CheckResult(True, "correct for finer and coarser pyramids, skipped levels and 1×1 maps."))


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
        answer, failure = _float_answer(fn, (ours, theirs), "a number between 0 and 1")
        if failure is not None:
            return _report(failure)
        if abs(answer - expected) > 1e-9:
            hint = ("count each unordered pair once" if abs(answer - 2 * expected) < 1e-9 or
                    abs(answer * 2 - expected) < 1e-9 else "a tie in either ranking counts as disagreeing")
            return _report(CheckResult(False, f"for {ours} and {theirs} expected {expected:.3f}, got "
                                              f"{answer:.3f}: {hint}"))
    return _report(CheckResult(True, "correct, ties included."))


def _kendall_tau(ours: dict, theirs: dict, ties_disagree=False) -> float:
    """The reference of the proposed exercise 8.1: Kendall's τ_a over the shared methods,
    (concordant − discordant) / pairs; a pair tied in either ranking counts as neither."""
    from itertools import combinations

    pairs = list(combinations(sorted(set(ours) & set(theirs)), 2))
    signs = [(ours[a] - ours[b]) * (theirs[a] - theirs[b]) for a, b in pairs]
    concordant = sum(x > 0 for x in signs)
    discordant = sum(x < 0 or (ties_disagree and x == 0) for x in signs)
    return (concordant - discordant) / len(pairs)


def check_kendall_tau(fn) -> CheckResult:
    """Proposed exercise 8.1: ``fn(ours, theirs)`` -> Kendall's τ_a between two
    {method: accuracy} rankings: (concordant − discordant) / number of pairs, from −1
    (reversed) to 1 (the same order); a tie in either ranking counts as neither."""
    cases = [({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "b": 3.0, "c": 2.0}),
             ({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}),
             ({"a": 1.0, "b": 1.0, "c": 2.0, "d": 0.5}, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})]
    for ours, theirs in cases:
        expected = _kendall_tau(ours, theirs)
        answer, failure = _float_answer(fn, (ours, theirs), "a number between −1 and 1")
        if failure is not None:
            return _report(failure)
        if abs(answer - expected) < 1e-9:
            continue
        hint = "(concordant − discordant) / number of pairs"
        if abs(answer - ordering_agreement(ours, theirs)) < 1e-9:
            hint = "that is the fraction of pairs that agree; τ subtracts the pairs that disagree"
        elif abs(answer - _kendall_tau(ours, theirs, ties_disagree=True)) < 1e-9:
            hint = "a tied pair is neither concordant nor discordant"
        return _report(CheckResult(False, f"for {ours} and {theirs} expected {expected:+.3f}, got {answer:+.3f}: "
                                          f"{hint}"))
    return _report(CheckResult(True, "correct, reversed rankings and ties included."))


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
