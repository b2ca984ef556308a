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


def test_regressor_check():
    from torch import nn
    from hintlearn_mini.exercises import check_regressor
    from hintlearn_mini.methods.fitnets import ConvRegressor
    assert check_regressor(lambda s, t: ConvRegressor(s, t))
    only_1x1 = check_regressor(lambda s, t: nn.Conv2d(s[0], t[0], 1))
    assert not only_1x1 and "outputs (32, 32, 32)" in only_1x1.message
    wrong_channels = check_regressor(lambda s, t: nn.Conv2d(s[0], 7, 1))
    assert "out_channels" in wrong_channels.message


def test_attention_map_check():
    from hintlearn_mini.exercises import check_attention_map
    assert check_attention_map(lambda f, p: F.normalize(f.pow(p).mean(1).flatten(1), dim=1))
    assert "each image" in check_attention_map(lambda f, p: f.pow(p).mean(1).flatten(1) / f.pow(p).mean(1).flatten(1).norm()).message
    assert "not normalised" in check_attention_map(lambda f, p: f.pow(p).mean(1).flatten(1)).message
    assert "shape" in check_attention_map(lambda f, p: f.pow(p).mean(1)).message


def test_fsp_matrix_check():
    from hintlearn_mini.exercises import check_fsp_matrix
    mean = lambda a, b: torch.einsum("bihw,bjhw->bij", a, b) / (a.shape[2] * a.shape[3])
    assert check_fsp_matrix(mean)
    assert "transpose" in check_fsp_matrix(lambda a, b: mean(b, a)).message
    assert "divide by H·W" in check_fsp_matrix(lambda a, b: torch.einsum("bihw,bjhw->bij", a, b)).message


def test_verdict_pairs_the_shared_seeds(capsys):
    from hintlearn_mini.plots import verdict
    results = {"a": [50.0, 51.0, 52.0], "b": [40.0, 41.0, 42.0], "c": [50.5, 50.0, 53.0], "one": [60.0],
               "two": [41.0, 42.5]}
    assert "clearly above" in verdict(results, "a", "b")
    assert "clearly below" in verdict(results, "b", "a")
    assert "within the noise" in verdict(results, "c", "a")
    assert "over 2 shared seeds" in verdict(results, "two", "b")  # the first two seeds of b
    assert "one seed only" in verdict(results, "one", "a")
    assert "better on 3 of 3 seeds" in verdict({"x": [41.0, 40.0, 37.0], "y": [37.0, 36.0, 35.0]}, "x", "y")
    assert "+10.00 points" in capsys.readouterr().out


def test_info_nce_and_hcl_checks():
    from hintlearn_mini.exercises import check_hcl_level, check_info_nce
    from hintlearn_mini.losses import hcl_loss
    def info(s, t, tau):
        logits = s @ t.t() / tau
        target = torch.arange(len(s))
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    assert check_info_nce(info)
    assert "one direction" in check_info_nce(lambda s, t, tau: F.cross_entropy(s @ t.t() / tau, torch.arange(len(s)))).message
    assert "temperature" in check_info_nce(lambda s, t, tau: info(s, t, 1.0)).message
    assert check_hcl_level(lambda a, b: hcl_loss([a], [b]))
    assert "plain MSE" in check_hcl_level(lambda a, b: F.mse_loss(a, b)).message


def test_ordering_agreement_and_its_check():
    from itertools import combinations
    from hintlearn_mini.exercises import check_ordering_agreement, ordering_agreement
    assert ordering_agreement({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "c": 3}) == 1.0
    assert ordering_agreement({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1}) == 0.0
    assert ordering_agreement({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 3, "c": 2}) == 2 / 3
    def right(o, t):
        pairs = list(combinations(o, 2))
        return sum((o[a] - o[b]) * (t[a] - t[b]) > 0 for a, b in pairs) / len(pairs)
    assert check_ordering_agreement(right)
    ties_agree = lambda o, t: sum((o[a] - o[b]) * (t[a] - t[b]) >= 0 for a, b in combinations(o, 2)) / len(list(combinations(o, 2)))
    assert "tie" in check_ordering_agreement(ties_agree).message


def test_matching_layers_check_names_the_mistake():
    from hintlearn_mini.exercises import check_matching_layers, matching_layers

    assert check_matching_layers(matching_layers)
    def first_match(teacher, student):
        pairs = {}
        for t, ts in teacher.items():
            same = [s for s, ss in student.items() if len(ts) == 3 and len(ss) == 3 and ss[1:] == ts[1:]]
            if same:
                pairs[t] = same[0]
        return pairs
    assert "last student layer" in check_matching_layers(first_match).message
    def keeps_all(teacher, student):
        return {t: matching_layers(teacher, student).get(t, "f0") for t in teacher}
    assert "leave out" in check_matching_layers(keeps_all).message
    assert "return a dict" in check_matching_layers(lambda t, s: [("layer1", "f1")]).message


def test_abs_attention_map_check_names_the_mistake():
    from hintlearn_mini.exercises import check_abs_attention_map
    normalise = lambda m: m / m.norm(dim=1, keepdim=True)
    right = lambda feat, p: normalise(feat.abs().pow(p).mean(1).flatten(1))
    assert check_abs_attention_map(right)
    no_abs = check_abs_attention_map(lambda feat, p: normalise(feat.pow(p).mean(1).flatten(1)))
    assert not no_abs and "take |A| first" in no_abs.message
    unnormalised = check_abs_attention_map(lambda feat, p: feat.abs().pow(p).mean(1).flatten(1))
    assert not unnormalised and "not normalised" in unnormalised.message


def test_weighted_fsp_loss_check_names_the_mistake():
    from hintlearn_mini.exercises import check_weighted_fsp_loss
    from hintlearn_mini.losses import fsp_matrix

    def weighted(student_pairs, teacher_pairs, weights, order=1, average=False):
        terms = [w * (fsp_matrix(*s) - fsp_matrix(*t)).pow(2).mean()
                 for w, s, t in zip(list(weights)[::order], student_pairs, teacher_pairs)]
        return sum(terms) / (len(terms) if average else 1)
    assert check_weighted_fsp_loss(weighted)
    unweighted = check_weighted_fsp_loss(lambda s, t, w: weighted(s, t, [1.0] * len(w)))
    assert not unweighted and "weights are ignored" in unweighted.message
    swapped = check_weighted_fsp_loss(lambda s, t, w: weighted(s, t, w, order=-1))
    assert not swapped and "wrong pairs" in swapped.message
    averaged = check_weighted_fsp_loss(lambda s, t, w: weighted(s, t, w, average=True))
    assert not averaged and "sums them" in averaged.message


def test_queue_info_nce_check_names_the_mistake():
    import torch
    import torch.nn.functional as F
    from hintlearn_mini.exercises import check_queue_info_nce

    def queue_nce(s, t, queue, tau, use_tau=True, batch_negatives=False):
        tau = tau if use_tau else 1.0
        if batch_negatives:
            return F.cross_entropy(s @ torch.cat([t, queue]).t() / tau, torch.arange(len(s)))
        logits = torch.cat([(s * t).sum(1, keepdim=True), s @ queue.t()], dim=1) / tau
        return F.cross_entropy(logits, torch.zeros(len(s), dtype=torch.long))
    assert check_queue_info_nce(queue_nce)
    no_tau = check_queue_info_nce(lambda s, t, q, tau: queue_nce(s, t, q, tau, use_tau=False))
    assert not no_tau and "temperature" in no_tau.message
    batch = check_queue_info_nce(lambda s, t, q, tau: queue_nce(s, t, q, tau, batch_negatives=True))
    assert not batch and "queue only" in batch.message
