import torch
import torch.nn.functional as F

from hintlearn_mini.exercises import check_resnet_parameters, check_soft_cross_entropy, check_soft_targets
from hintlearn_mini.losses import kd_loss
from hintlearn_mini.models import CifarResNet, count_parameters


def test_resnet_parameters_check():
    assert check_resnet_parameters(lambda b, w, c: count_parameters(CifarResNet(b, w, c)))
    no_fc_bias = check_resnet_parameters(lambda b, w, c: count_parameters(CifarResNet(b, w, c)) - c)
    assert not no_fc_bias and "bias" in no_fc_bias.message
    def unanswered(b, w, c):
        raise NotImplementedError
    result = check_resnet_parameters(unanswered)
    assert not result and "not answered yet" in result.message
    assert "return an int" in check_resnet_parameters(lambda b, w, c: 1.5).message


def test_soft_targets_check_names_the_mistake():
    assert check_soft_targets(lambda z, T: F.softmax(z / T, dim=1))
    assert "by T *before* the softmax" in check_soft_targets(lambda z, T: F.softmax(z, dim=1)).message
    assert "divide the probabilities" in check_soft_targets(lambda z, T: F.softmax(z, dim=1) / T).message
    assert "dim=0" in check_soft_targets(lambda z, T: F.softmax(z / T, dim=0)).message


def test_soft_targets_check_catches_overflow():
    def naive(z, T):
        e = (z / T).exp()
        return e / e.sum(1, keepdim=True)
    def stable(z, T):
        e = (z / T - (z / T).max(1, keepdim=True).values).exp()
        return e / e.sum(1, keepdim=True)
    assert "Subtract each row's maximum" in check_soft_targets(naive).message
    assert check_soft_targets(stable)


def _ce(s, t, T):  # -p_t log q_s per element
    return -F.softmax(t / T, 1) * F.log_softmax(s / T, 1)


def test_soft_cross_entropy_check_names_the_mistake():
    assert check_soft_cross_entropy(lambda s, t, T: _ce(s, t, T).sum(1).mean() * T * T)
    assert "T² factor is missing" in check_soft_cross_entropy(lambda s, t, T: _ce(s, t, T).sum(1).mean()).message
    assert "average over classes" in check_soft_cross_entropy(lambda s, t, T: _ce(s, t, T).mean() * T * T).message
    assert "sum over the batch" in check_soft_cross_entropy(lambda s, t, T: _ce(s, t, T).sum() * T * T).message
    assert "swapped" in check_soft_cross_entropy(lambda s, t, T: _ce(t, s, T).sum(1).mean() * T * T).message
    assert "KL divergence" in check_soft_cross_entropy(lambda s, t, T: kd_loss(s, t, T)).message
    assert "scalar" in check_soft_cross_entropy(lambda s, t, T: _ce(s, t, T).sum(1)).message
    result = check_soft_cross_entropy(lambda s, t, T: _ce(s, t, T).sum(1).mean() * T * T + 1)
    assert not result
    try:
        result.require()
    except AssertionError as error:
        assert "expected" in str(error)
    else:
        raise AssertionError("require() must raise for a wrong answer")
