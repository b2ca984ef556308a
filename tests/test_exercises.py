import inspect
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hintlearn_mini import exercises
from hintlearn_mini.exercises import attention_transfer, comparison, crd, fsp, knowledge_distillation
from hintlearn_mini.exercises import (check_kd_gradient, check_paper_at_loss, check_resnet_parameters,
                                      check_soft_cross_entropy, check_soft_targets)
from hintlearn_mini.losses import kd_loss
from hintlearn_mini.models import CifarResNet, count_parameters

ROOT = Path(__file__).resolve().parents[1]


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


def test_ordering_agreement():
    from hintlearn_mini.exercises import ordering_agreement
    assert ordering_agreement({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "c": 3}) == 1.0
    assert ordering_agreement({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1}) == 0.0
    assert ordering_agreement({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 3, "c": 2}) == 2 / 3
    assert ordering_agreement({"a": 1, "b": 1, "c": 2}, {"a": 1, "b": 2, "c": 3}) == 2 / 3  # a tie disagrees
    with pytest.raises(ValueError, match="fewer than two"):
        ordering_agreement({"a": 1}, {"a": 2, "b": 1})


def test_matching_layers_check_names_the_mistake():
    from hintlearn_mini.exercises import check_matching_layers
    from hintlearn_mini.exercises.your_own_models import _matching_layers as matching_layers

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


def _kd_gradient(z, v, T):
    return T * (F.softmax(z / T, 1) - F.softmax(v / T, 1)) / len(z)


def _logit_matching(z, v):
    return (z - v) / (z.shape[1] * len(z))


def test_kd_gradient_check_names_the_mistake():
    assert check_kd_gradient(_kd_gradient)
    wrong = {"factor T:": lambda z, v, T: _kd_gradient(z, v, T) * T,
             "factor 1/T:": lambda z, v, T: _kd_gradient(z, v, T) / T,
             "factor 1/T²": lambda z, v, T: _kd_gradient(z, v, T) / T**2,
             "sign is flipped": lambda z, v, T: -_kd_gradient(z, v, T),
             "factor B = 6": lambda z, v, T: _kd_gradient(z, v, T) * len(z),
             "not divided by T inside": lambda z, v, T: _kd_gradient(z * T, v * T, T)}
    for message, answer in wrong.items():
        result = check_kd_gradient(answer)
        assert not result and message in result.message, (message, result.message)


def test_kd_gradient_check_refuses_autograd_and_compares_with_logit_matching():
    def by_autograd(z, v, T):
        z = z.clone().requires_grad_(True)
        loss = -(F.softmax(v / T, 1) * F.log_softmax(z / T, 1)).sum(1).mean() * T * T
        return torch.autograd.grad(loss, z)[0]
    refused = check_kd_gradient(by_autograd)
    assert not refused and "torch.no_grad()" in refused.message
    both = check_kd_gradient(_kd_gradient, _logit_matching)
    assert both and "T =   100:" in both.message and "zero-mean" in both.message
    no_n = check_kd_gradient(_kd_gradient, lambda z, v: (z - v) / len(z))
    assert not no_n and "factor N = 10" in no_n.message
    no_half = check_kd_gradient(_kd_gradient, lambda z, v: 2 * _logit_matching(z, v))
    assert not no_half and "the ½" in no_half.message


def test_kd_gradient_tends_to_logit_matching_for_zero_mean_logits_only():
    from hintlearn_mini.exercises.knowledge_distillation import _high_temperature_table

    g = torch.Generator().manual_seed(0)
    z, v = torch.randn(6, 10, generator=g) * 3, torch.randn(6, 10, generator=g) * 3
    last = _high_temperature_table(_kd_gradient, _logit_matching, z, v).splitlines()[-1]
    zero_mean, shifted = (float(x.split("%")[0].split()[-1]) for x in last.split(",", 1))
    assert zero_mean < 5 < 50 < shifted, last


def _conv_reg(s, t, kernel_up=4, bias=True, bn=True, relu=True, refuse=True):
    from torch import nn

    (cs, hs, ws), (ct, ht, wt) = s, t
    if hs == 2 * ht:
        conv = nn.Conv2d(cs, ct, 3, stride=2, padding=1, bias=bias)
    elif 2 * hs == ht:
        conv = nn.ConvTranspose2d(cs, ct, kernel_up, stride=2, padding=1, bias=bias)
    elif hs >= ht and ws >= wt:
        conv = nn.Conv2d(cs, ct, (1 + hs - ht, 1 + ws - wt), bias=bias)
    elif refuse:
        raise ValueError(f"no regressor maps {s} to {t}")
    else:
        conv = nn.Conv2d(cs, ct, 1)
    return nn.Sequential(conv, *[nn.BatchNorm2d(ct)] * bn, *[nn.ReLU()] * relu)


def test_hint_regressor_check_names_the_mistake():
    from hintlearn_mini.exercises import check_hint_regressor
    from hintlearn_mini.methods.fitnets import ConvRegressor

    assert check_hint_regressor(_conv_reg)
    wrong = {"yours is a ConvTranspose2d kernel (3, 3)": lambda s, t: _conv_reg(s, t, kernel_up=3),
             "keeps its bias": lambda s, t: _conv_reg(s, t, bias=False),
             "['Conv2d', 'ReLU']": lambda s, t: _conv_reg(s, t, bn=False),
             "['Conv2d', 'BatchNorm2d']": lambda s, t: _conv_reg(s, t, relu=False),
             "raise a ValueError": lambda s, t: _conv_reg(s, t, refuse=False),
             "package's ConvRegressor": lambda s, t: ConvRegressor(s, t)}
    for message, answer in wrong.items():
        result = check_hint_regressor(answer)
        assert not result and message in result.message, (message, result.message)
    stride_one = check_hint_regressor(lambda s, t: _conv_reg(s, (t[0], *s[1:])))
    assert not stride_one and "output is 32 high where the hint is 16" in stride_one.message

    class ReluBeforeNorm(torch.nn.Module):  # the right layers, applied out of order
        def __init__(self, s, t):
            super().__init__()
            self.conv, self.bn, self.relu = _conv_reg(s, t)

        def forward(self, x):
            return self.bn(self.relu(self.conv(x)))
    out_of_order = check_hint_regressor(ReluBeforeNorm)
    assert not out_of_order and "another output" in out_of_order.message


def test_hcl_levels_check_names_the_mistake():
    from hintlearn_mini.exercises import check_hcl_levels
    from hintlearn_mini.exercises.reviewkd import _hcl_levels
    from hintlearn_mini.losses import hcl_loss

    def right(fs, ft, levels):
        loss, w, norm = F.mse_loss(fs, ft), 1.0, 1.0
        for size in levels:
            if size < fs.shape[-1]:
                w /= 2
                pooled = (F.adaptive_avg_pool2d(f, size) for f in (fs, ft))
                loss, norm = loss + w * F.mse_loss(*pooled), norm + w
        return loss / norm
    assert check_hcl_levels(right)
    fs, ft = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(right(fs, ft, (4, 2, 1)), hcl_loss([fs], [ft]))
    wrong = {"whatever `levels` says": lambda a, b, l: right(a, b, (4, 2, 1)),
             "level *used*": lambda a, b, l: _hcl_levels(a, b, l, halve_used_only=False),
             "is skipped": lambda a, b, l: _hcl_levels(a, b, l, skip_large=False),
             "1 plus the weights": lambda a, b, l: _hcl_levels(a, b, l, normalise=False),
             "number of terms": lambda a, b, l: _hcl_levels(a, b, l, normalise=False)
             / (1 + sum(x < a.shape[-1] for x in l))}
    for message, answer in wrong.items():
        result = check_hcl_levels(answer)
        assert not result and message in result.message, (message, result.message)


def test_proposed_replacements_of_retyped_exercises_name_the_mistake():
    from hintlearn_mini.losses import fsp_matrix

    def code_at(s, t, beta):
        maps = lambda f: F.normalize(f.pow(2).mean(1).flatten(1), dim=1)
        return beta * sum((maps(a) - maps(b)).pow(2).mean() for a, b in zip(s, t))
    def paper_at(s, t, beta):
        maps = lambda f: F.normalize(f.pow(2).sum(1).flatten(1), dim=1)
        return beta / 2 * sum((maps(a) - maps(b)).norm(dim=1).mean() for a, b in zip(s, t))
    def masked_nce(s, t, labels, tau):
        others = (labels[:, None] == labels[None, :]) & ~torch.eye(len(s), dtype=torch.bool)
        logits = (s @ t.t() / tau).masked_fill(others, float("-inf"))
        return F.cross_entropy(logits, torch.arange(len(s)))

    def tau_a(o, t):
        pairs = [(a, b) for a in o for b in o if a < b]
        signs = [(o[a] - o[b]) * (t[a] - t[b]) for a, b in pairs]
        return (sum(x > 0 for x in signs) - sum(x < 0 for x in signs)) / len(pairs)
    cases = [
        (check_paper_at_loss, paper_at, {
            "not squared": lambda s, t, b: attention_transfer._paper_at_loss(s, t, b, squared=True),
            "½ of β/2": lambda s, t, b: 2 * attention_transfer._paper_at_loss(s, t, b),
            "official code's": code_at}),
        (exercises.check_fsp_correlation, lambda a, b: torch.einsum(
            "bip,bjp->bij", F.normalize(a.flatten(2), dim=2), F.normalize(b.flatten(2), dim=2)), {
            "plain FSP matrix": fsp_matrix,
            "transpose": lambda a, b: fsp._fsp_correlation(b, a)}),
        (exercises.check_masked_info_nce, masked_nce, {
            "nothing is masked": lambda s, t, l, tau: F.cross_entropy(s @ t.t() / tau, torch.arange(len(s))),
            "set it to −inf": lambda s, t, l, tau: crd._masked_info_nce(s, t, l, tau, fill=0.0),
            "the positive (the diagonal)": lambda s, t, l, tau: crd._masked_info_nce(s, t, l, tau, own=True)}),
        (exercises.check_kendall_tau, tau_a, {
            "fraction of pairs that agree": exercises.ordering_agreement,
            "neither concordant": lambda o, t: comparison._kendall_tau(o, t, ties_disagree=True)}),
    ]
    for check, right, wrong in cases:
        assert check(right), check.__name__
        for message, answer in wrong.items():
            result = check(answer)
            assert not result and message in result.message, (check.__name__, message, result.message)
    assert comparison._kendall_tau({"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 2, "c": 1}) == -1.0


def _check_kd_and_logit_matching(logit_matching):
    return check_kd_gradient(knowledge_distillation._kd_gradient, logit_matching)


# Every table of mistakes that scale the answer, written again here: the check, its
# reference answer, the package's table and, for a phrase of each hint, the factor by
# which that mistake scales the reference, as a function of the check's arguments.
MISTAKE_TABLES = {
    "soft_cross_entropy": (check_soft_cross_entropy, knowledge_distillation._soft_cross_entropy,
                           knowledge_distillation._soft_cross_entropy_mistakes, {
        "the T² factor is missing:": lambda s, t, T: 1 / T**2,
        "by T² twice": lambda s, t, T: T**2,
        "you average over classes too": lambda s, t, T: 1 / s.shape[1],
        "is missing and you average over classes": lambda s, t, T: 1 / (s.shape[1] * T**2),
        "you sum over the batch; average": lambda s, t, T: len(s),
        "you sum over the batch and the T²": lambda s, t, T: len(s) / T**2}),
    "kd_gradient": (check_kd_gradient, knowledge_distillation._kd_gradient,
                    knowledge_distillation._kd_gradient_mistakes, {
        "the sign is flipped: it is q − p": lambda z, v, T: -1.0,
        "factor 1/T:": lambda z, v, T: 1 / T,
        "factor T:": lambda z, v, T: T,
        "factor 1/T²:": lambda z, v, T: 1 / T**2,
        "factor B = 6:": lambda z, v, T: len(z),
        "factor 1/C = 1/10:": lambda z, v, T: 1 / z.shape[1]}),
    "logit_matching": (_check_kd_and_logit_matching, knowledge_distillation._logit_matching_gradient,
                       knowledge_distillation._logit_matching_mistakes, {
        "the sign is flipped: it is z − v": lambda z, v: -1.0,
        "factor N = 10:": lambda z, v: z.shape[1],
        "factor B = 6:": lambda z, v: len(z),
        "off by N·B:": lambda z, v: z.numel(),
        "factor 2:": lambda z, v: 2.0}),
    "paper_at_loss": (check_paper_at_loss, attention_transfer._paper_at_loss, attention_transfer._paper_at_mistakes, {
        "the ½ of β/2 is missing": lambda s, t, beta: 2.0,
        "β/2 is missing": lambda s, t, beta: 2 / beta,
        "β is missing and so is ½": lambda s, t, beta: 1 / beta,
        "sum over the batch of 4 images": lambda s, t, beta: len(s[0])}),
}
MISTAKES = [(name, i) for name, (*_, mistakes) in MISTAKE_TABLES.items() for i in range(len(mistakes))]


@pytest.mark.parametrize("name, i", MISTAKES, ids=[f"{name}-{i}" for name, i in MISTAKES])
def test_each_mistake_of_each_table_gets_its_own_hint(name, i):
    check, reference, table, mistakes = MISTAKE_TABLES[name]
    assert check(reference), f"the reference of the {name} table fails its check"
    phrases, calls = list(mistakes), []
    own = phrases.pop(i)

    def mistaken(*args):  # the right answer times the mistake's factor, at the check's own inputs
        calls.append(args)
        return mistakes[own](*args) * reference(*args)
    result = check(mistaken)
    assert not result and own in result.message, (own, result.message)
    assert not [p for p in phrases if p in result.message and p not in own], (own, result.message)
    assert len(table(*calls[-1])) == len(mistakes), f"the {name} table has entries this test does not know"


def test_every_mistake_table_is_tested():
    tables = {getattr(module, name) for module in vars(exercises).values() if inspect.ismodule(module)
              for name in vars(module) if name.endswith("_mistakes")}
    assert tables == {table for _, _, table, _ in MISTAKE_TABLES.values()}


def _names_imported_from_exercises(code: str) -> set[str]:
    """The names a cell imports from ``hintlearn_mini.exercises`` or reads as ``exercises.name``."""
    names = set()
    for parenthesised, line in re.findall(r"from hintlearn_mini\.exercises import (?:\(([^)]*)\)|([^\n]*))", code):
        listed = re.sub(r"#[^\n]*", "", parenthesised or line)
        names |= {part.split(" as ")[0].strip() for part in listed.split(",")}
    if re.search(r"from hintlearn_mini import [^\n]*\bexercises\b", code):
        names |= set(re.findall(r"\bexercises\.(\w+)", code))
    return names - {""}


def test_every_public_name_of_exercises_is_used_by_a_chapter_or_an_assignment():
    notebooks = [*sorted((ROOT / "book").glob("*.ipynb")), *sorted((ROOT / "course" / "assignments").rglob("*.ipynb"))]
    used = set()
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                used |= _names_imported_from_exercises("".join(cell["source"]))
    public = set(exercises.__all__) - {"CheckResult"}  # CheckResult: the type every check returns
    assert public - used == set(), "public in hintlearn_mini.exercises but used by no chapter or assignment"
    assert used - set(exercises.__all__) == set(), "imported by a notebook but not exported by exercises"
