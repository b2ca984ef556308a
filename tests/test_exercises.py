import torch
import torch.nn.functional as F

from hintlearn_mini.exercises import check_kd_loss, check_resnet_parameters, check_soft_targets
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


def _kl(s, t, T):  # KL(p_t || q_s) per element
    return F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1))


def test_kd_loss_check_names_the_mistake():
    assert check_kd_loss(lambda s, t, T: _kl(s, t, T).sum(1).mean() * T * T)
    assert "T² factor is missing" in check_kd_loss(lambda s, t, T: _kl(s, t, T).sum(1).mean()).message
    assert "batchmean" in check_kd_loss(lambda s, t, T: _kl(s, t, T).mean() * T * T).message
    assert "sum over the batch" in check_kd_loss(lambda s, t, T: _kl(s, t, T).sum() * T * T).message
    assert "KL(student" in check_kd_loss(lambda s, t, T: _kl(t, s, T).sum(1).mean() * T * T).message
    assert "scalar" in check_kd_loss(lambda s, t, T: _kl(s, t, T).sum(1)).message
    result = check_kd_loss(lambda s, t, T: _kl(s, t, T).sum(1).mean() * T * T + 1)
    assert not result
    try:
        result.require()
    except AssertionError as error:
        assert "expected" in str(error)
    else:
        raise AssertionError("require() must raise for a wrong answer")
