import math

import pytest
import torch

from hintlearn_mini.losses import kd_loss


def test_kd_loss_hand_computed():
    # one sample, two classes, T = 2: p = softmax([2, 0] / 2), q = softmax([0, 0] / 2)
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[2.0, 0.0]])
    p1 = math.exp(1) / (math.exp(1) + 1)
    p = [p1, 1 - p1]
    kl = sum(pi * math.log(pi / 0.5) for pi in p)
    assert kd_loss(student, teacher, T=2.0).item() == pytest.approx(4 * kl, rel=1e-6)


def test_kd_loss_is_batchmean_times_t_squared():
    torch.manual_seed(0)
    s, t = torch.randn(5, 10), torch.randn(5, 10)
    per_sample = [kd_loss(s[i:i + 1], t[i:i + 1], T=3.0) for i in range(5)]
    torch.testing.assert_close(kd_loss(s, t, T=3.0), torch.stack(per_sample).mean())
    p = torch.softmax(t / 3, 1)
    manual = (p * (p.log() - torch.log_softmax(s / 3, 1))).sum(1).mean() * 9
    torch.testing.assert_close(kd_loss(s, t, T=3.0), manual)


def test_kd_loss_zero_for_identical_logits_and_positive_otherwise():
    z = torch.randn(4, 10)
    assert kd_loss(z, z).abs().item() < 1e-6
    assert kd_loss(z, z.flip(1)).item() > 0


def test_kd_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 10\) vs \(4, 100\)"):
        kd_loss(torch.randn(4, 10), torch.randn(4, 100))


def test_kd_loss_rejects_non_positive_temperature():
    with pytest.raises(ValueError, match="positive"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 3), T=0)


def _softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def test_dkd_loss_matches_a_hand_computed_case():
    from hintlearn_mini.losses import dkd_loss

    student = [[1.0, 2.0, 0.5, -1.0], [0.0, -0.5, 1.5, 0.2]]
    teacher = [[3.0, 0.5, 0.0, -2.0], [-1.0, 0.0, 2.5, 1.0]]
    labels, alpha, beta, T = [0, 2], 1.5, 6.0, 2.0
    expected = 0.0
    for s, t, y in zip(student, teacher, labels):  # written out, sample by sample
        ps, pt = _softmax([v / T for v in s]), _softmax([v / T for v in t])
        tckd = _kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
        rest_s = _softmax([v / T for i, v in enumerate(s) if i != y])
        rest_t = _softmax([v / T for i, v in enumerate(t) if i != y])
        expected += T * T * (alpha * tckd + beta * _kl(rest_t, rest_s)) / len(labels)
    value = dkd_loss(torch.tensor(student), torch.tensor(teacher), torch.tensor(labels), alpha, beta, T)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_dkd_with_beta_the_teachers_doubt_is_hintons_kd():
    from hintlearn_mini.losses import dkd_loss, kd_loss

    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(1, 10, generator=g), 3 * torch.randn(1, 10, generator=g)
    label, T = torch.tensor([4]), 4.0
    doubt = 1 - torch.softmax(teacher / T, 1)[0, 4].item()  # KD = TCKD + (1 − p_t) · NCKD
    decoupled = dkd_loss(student, teacher, label, alpha=1.0, beta=doubt, T=T)
    torch.testing.assert_close(decoupled, kd_loss(student, teacher, T), rtol=1e-5, atol=1e-6)
    assert dkd_loss(teacher, teacher, label).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="dkd_loss.*same shape|dkd_loss"):
        dkd_loss(student, teacher[:, :5], label)
    with pytest.raises(ValueError, match="temperature T must be positive"):
        dkd_loss(student, teacher, label, T=0.0)


def test_the_dkd_method_ramps_its_term_in_and_reads_the_teachers_logits_only():
    from hintlearn_mini.losses import ce_loss, dkd_loss
    from hintlearn_mini.methods import DKD
    from hintlearn_mini.methods.dkd import default_beta, official_beta
    from hintlearn_mini.models import build_model

    torch.manual_seed(0)
    method = DKD(build_model("resnet8"), build_model("resnet8").eval(), beta=2.0, warmup=0.25)
    assert DKD.reads_teacher_logits and method.extra_parameters() == []
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    method.eval()
    with torch.no_grad():
        full = dkd_loss(method.student(x), method.teacher(x), y, 1.0, 2.0, 4.0)
        for progress, ramp in ((0.0, 0.0), (0.1, 0.4), (0.25, 1.0), (0.9, 1.0)):
            method.set_progress(progress)
            _, terms = method(x, y)
            torch.testing.assert_close(terms["dkd"], ramp * full)
            torch.testing.assert_close(terms["ce"], ce_loss(method.student(x), y))
    assert official_beta("resnet32", "resnet8") is None and default_beta("resnet32", "resnet8") == 2.0
    assert official_beta("resnet32x4", "resnet8x4") == default_beta("resnet32x4", "resnet8x4") == 8.0
    from hintlearn_mini.bench import recipes
    from hintlearn_mini.profiles import PROFILES
    laptop, paper = PROFILES["laptop"], PROFILES["paper"].for_pair("resnet32x4", "resnet8x4")
    assert recipes.DKD.build(laptop, method.teacher, None, method.student).beta == 2.0
    assert recipes.DKD.build(paper, build_model("resnet32x4", 100), None, build_model("resnet8x4", 100)).beta == 8.0
