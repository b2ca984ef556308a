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
