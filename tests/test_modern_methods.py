"""CRD and ReviewKD: losses on hand-checked cases, memory bank, fusion, errors, teacher."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import random_images
from hintlearn_mini.views import contrast_indices
from hintlearn_mini.losses import hcl_loss, info_nce_loss, nce_loss
from hintlearn_mini.methods.crd import CRD, ContrastMemory, Embed
from hintlearn_mini.methods.reviewkd import ABF, ReviewKD
from hintlearn_mini.models import build_model
from hintlearn_mini.train import fit


# ------------------------------------------------------------------- NCE / CRD
def test_nce_loss_hand_computed():
    # B = 1, K = 2, N = 4: noise K·Pn = 0.5
    scores = torch.tensor([[[1.0], [0.5], [0.25]]])
    expected = -(math.log(1 / 1.5) + math.log(0.5 / 1.0) + math.log(0.5 / 0.75))
    assert nce_loss(scores, 4, eps=0).item() == pytest.approx(expected, rel=1e-6)


def test_nce_loss_averages_over_the_batch_and_rejects_bad_shapes():
    torch.manual_seed(0)
    p = torch.rand(4, 11, 1)
    per_sample = torch.stack([nce_loss(p[i:i + 1], 100) for i in range(4)])
    torch.testing.assert_close(nce_loss(p, 100), per_sample.mean())
    with pytest.raises(ValueError, match=r"\(B, K\+1, 1\).*\(4, 11\)"):
        nce_loss(p.squeeze(2), 100)


def test_contrast_indices_positive_first_negatives_from_other_classes():
    labels = torch.arange(40) % 4
    index = torch.tensor([0, 5, 10, 39])
    idx = contrast_indices(labels, index, k=12, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (4, 13)
    assert torch.equal(idx[:, 0], index)
    assert (labels[idx[:, 1:]] != labels[index][:, None]).all()
    assert all(len(set(row.tolist())) == 12 for row in idx[:, 1:])  # without replacement
    again = contrast_indices(labels, index, k=12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


def test_full_bank_and_gather_scores_agree():
    torch.manual_seed(0)
    small = ContrastMemory(dim=8, n_data=50, k=20)
    big = ContrastMemory(dim=8, n_data=50, k=3)
    big.load_state_dict(small.state_dict())
    assert small.use_full_bank() and not big.use_full_bank()
    anchor = F.normalize(torch.randn(4, 8), dim=1)
    idx = torch.randint(0, 50, (4, 21))
    torch.testing.assert_close(small._scores(anchor, small.student_bank, idx),
                               big._scores(anchor, big.student_bank, idx))


def test_memory_update_rule_and_normalising_constant():
    torch.manual_seed(0)
    memory = ContrastMemory(dim=4, n_data=10, k=3, momentum=0.5)
    before = memory.student_bank.clone()
    e_s, e_t = F.normalize(torch.randn(2, 4), dim=1), F.normalize(torch.randn(2, 4), dim=1)
    index = torch.tensor([7, 2])
    idx = torch.tensor([[7, 0, 1, 3], [2, 4, 5, 6]])
    p_t, p_s = memory(e_s, e_t, index, idx)
    assert p_t.shape == (2, 4, 1) and memory.z.min() > 0
    expected = F.normalize(0.5 * before[7] + 0.5 * e_s[0], dim=0)
    torch.testing.assert_close(memory.student_bank[7], expected)
    torch.testing.assert_close(memory.student_bank[0], before[0])  # untouched rows stay
    z = memory.z.clone()
    memory(e_s, e_t, index, idx)
    assert torch.equal(memory.z, z)  # Z is set once, then frozen


def test_memory_bank_size_mismatch_is_named():
    memory = ContrastMemory(dim=4, n_data=10, k=3)
    e = F.normalize(torch.randn(1, 4), dim=1)
    with pytest.raises(ValueError, match="memory bank has 10 rows"):
        memory(e, e, torch.tensor([12]), torch.tensor([[12, 0, 1, 2]]))


def test_embed_is_unit_length():
    out = Embed(64, 128)(torch.randn(5, 64))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))


def test_crd_adapts_k_with_a_warning_and_needs_indices():
    data = random_images(40)
    with pytest.warns(UserWarning, match="using K=36"):
        distiller = CRD(build_model("resnet8"), build_model("resnet8"), data.labels, k=100)
    assert distiller.k == 36
    with pytest.raises(ValueError, match="dataset index"):
        distiller(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))


def _frozen_teacher_check(make):
    torch.manual_seed(0)
    teacher = build_model("resnet14")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    data = random_images(32)
    distiller = make(build_model("resnet8"), teacher, data)
    fit(distiller, data, None, epochs=1, batch_size=16, lr=0.01, progress=False)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in teacher.parameters())
    assert distiller.extra_parameters() and all(p.grad is not None for p in distiller.extra_parameters()
                                                 if p.requires_grad)


def test_crd_trains_both_embeddings_never_the_teacher():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _frozen_teacher_check(lambda s, t, d: CRD(s, t, d.labels, k=8))


def test_crd_is_deterministic_with_a_seed():
    data = random_images(32)
    def run():
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = CRD(build_model("resnet8"), build_model("resnet8"), data.labels, k=8, seed=3)
        return fit(d, data, None, epochs=1, batch_size=16, progress=False).epochs[0]["crd"]
    assert run() == run()


def test_info_nce_loss_hand_computed():
    # two images, 2-d unit embeddings: S = [e1, e2], T = [e1, e1]; τ = 1
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # S Tᵀ = [[1, 1], [0, 0]]: rows give CE log 2 and log 2; columns [[1, 0], [1, 0]]:
    # CE(row 0 → 0) = log(1 + e^-1), CE(row 1 → 1) = log(1 + e)
    by_rows = math.log(2.0)
    by_cols = 0.5 * (math.log(1 + math.exp(-1)) + math.log(1 + math.e))
    assert info_nce_loss(s, t, tau=1.0).item() == pytest.approx(0.5 * (by_rows + by_cols), abs=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        info_nce_loss(s, t[:1], 1.0)


def test_crd_in_batch_trains_the_embeddings_on_info_nce_without_the_bank():
    data = random_images(16)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crd = CRD(build_model("resnet8"), build_model("resnet8"), data.labels, k=8, in_batch=True, beta=2.0,
                  ce_weight=0.0)
    crd.train()
    x, y, index = data.images[:8].float() / 255, data.labels[:8], torch.arange(8)
    banks = crd.memory.student_bank.clone(), crd.memory.teacher_bank.clone()
    _, losses = crd(x, y, index)
    torch.manual_seed(0)
    _, s_feats = crd.student(x, features=True)
    _, t_feats = crd.teacher(x, features=True)
    expected = 2.0 * info_nce_loss(crd.embed_student(s_feats.pooled), crd.embed_teacher(t_feats.pooled),
                                   crd.memory.tau)
    assert set(losses) == {"crd"} and losses["crd"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.equal(banks[0], crd.memory.student_bank)  # the banks are never updated
    assert torch.equal(banks[1], crd.memory.teacher_bank)
    assert "in_batch=True" in repr(crd)  # the run cache keys on it


# ------------------------------------------------------------------- ReviewKD
def test_hcl_loss_weights_follow_the_official_code():
    fs, ft = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
    # every MSE is 1: (1 + 1/2 + 1/4) / 1.75 = 1 for a 4×4 map (levels 2 and 1 used)
    assert hcl_loss([fs], [ft]).item() == pytest.approx(1.0)
    fs = torch.zeros(1, 1, 4, 4)
    ft = torch.tensor([[1.0, -1.0, 1.0, -1.0]] * 4).view(1, 1, 4, 4)  # pools to 0 at 2×2 and 1×1
    assert hcl_loss([fs], [ft]).item() == pytest.approx(1 / 1.75)
    single = torch.tensor([[[[2.0]]]])
    assert hcl_loss([single], [torch.zeros_like(single)]).item() == pytest.approx(4.0)
    assert hcl_loss([fs, single], [ft, torch.zeros_like(single)]).item() == pytest.approx(1 / 1.75 + 4)


def test_hcl_loss_shape_mismatch_is_named():
    with pytest.raises(ValueError, match=r"level 0: student \(1, 2, 4, 4\) vs teacher \(1, 3, 4, 4\)"):
        hcl_loss([torch.zeros(1, 2, 4, 4)], [torch.zeros(1, 3, 4, 4)])


def test_abf_fuses_and_resizes():
    abf = ABF(16, 32, 8, fuse=True)
    y, residual = abf(torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4), shape=8, out_shape=8)
    assert y.shape == (2, 8, 8, 8) and residual.shape == (2, 32, 8, 8)
    assert abf.last_attention.shape == (2, 2, 8, 8)
    assert (abf.last_attention >= 0).all() and (abf.last_attention <= 1).all()
    with pytest.raises(ValueError, match="residual"):
        abf(torch.randn(2, 16, 8, 8))
    start = ABF(16, 32, 8, fuse=False)
    assert start.att is None and start(torch.randn(2, 16, 1, 1))[0].shape == (2, 8, 1, 1)


def official_abf(abf, x, residual, shape, out_shape):
    """The official formulation: concatenate at full resolution, then the 1×1 attention conv."""
    x = abf.conv1(x)
    residual = F.interpolate(residual, (shape, shape), mode="nearest")
    weights = abf.att(torch.cat([x, residual], 1))
    x = x * weights[:, :1] + residual * weights[:, 1:]
    if x.shape[-1] != out_shape:
        x = F.interpolate(x, (out_shape, out_shape), mode="nearest")
    return abf.conv2(x), x


@pytest.mark.parametrize("shape, out_shape", [(8, 8), (8, 16), (4, 4)])
def test_abf_equals_the_official_concatenation(shape, out_shape):
    torch.manual_seed(0)
    abf = ABF(16, 32, 8, fuse=True).double()  # float64: equal up to rounding, checked tightly
    nn.init.normal_(abf.att[0].bias)  # the bias must be counted once, not twice
    x = torch.randn(2, 16, shape, shape, dtype=torch.float64)
    residual = torch.randn(2, 32, 2, 2, dtype=torch.float64)
    y, r = abf(x, residual, shape=shape, out_shape=out_shape)
    grads = torch.autograd.grad(y.square().sum(), list(abf.parameters()))
    y_ref, r_ref = official_abf(abf, x, residual, shape, out_shape)
    refs = torch.autograd.grad(y_ref.square().sum(), list(abf.parameters()))
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(r, r_ref)
    for g, ref in zip(grads, refs):
        torch.testing.assert_close(g, ref)


def test_reviewkd_levels_match_the_teacher_and_warm_up():
    distiller = ReviewKD(build_model("resnet8"), build_model("resnet8x4"))
    x = torch.randn(2, 3, 32, 32)
    _, sf = distiller.student(x, features=True)
    fused = distiller.review(ReviewKD.student_taps(sf))
    _, tf = distiller.teacher(x, features=True)
    assert [f.shape for f in fused] == [t.shape for t in ReviewKD.teacher_taps(tf)]
    distiller.set_progress(0.0)
    assert distiller(x, torch.tensor([0, 1]))[1]["hcl"].item() == 0.0
    distiller.set_progress(0.5)
    assert distiller(x, torch.tensor([0, 1]))[1]["hcl"].item() > 0


def test_reviewkd_without_review_learns_each_stage_from_its_own_stage_only():
    """The review: a level's fused feature depends on the student's deeper stages; the
    ablation without it (``review=False``) sees its own stage alone."""
    torch.manual_seed(0)
    student, teacher = build_model("resnet8"), build_model("resnet8x4")
    x = torch.randn(2, 3, 32, 32)
    for review, deeper_matters in ((True, True), (False, False)):
        distiller = ReviewKD(student, teacher, review=review).eval()
        taps = [t.detach().requires_grad_() for t in ReviewKD.student_taps(student(x, features=True)[1])]
        shallow = distiller.review(taps)[0]  # the first stage's fused feature
        shallow.sum().backward()
        assert (taps[-1].grad is not None and taps[-1].grad.abs().sum() > 0) == deeper_matters
        assert taps[0].grad.abs().sum() > 0
    assert "review=False" in repr(ReviewKD(student, teacher, review=False))
    assert "review=True" in repr(ReviewKD(student, teacher))  # every argument is printed
    assert sum(abf.att is not None for abf in ReviewKD(student, teacher, review=False).abfs) == 0


def test_reviewkd_teacher_taps_are_preactivations():
    _, feats = build_model("resnet8")(torch.randn(4, 3, 32, 32), features=True)
    assert min(t.min() for t in ReviewKD.teacher_taps(feats)[:3]) < 0
    assert min(t.min() for t in ReviewKD.student_taps(feats)) >= 0


def test_reviewkd_never_trains_the_teacher():
    _frozen_teacher_check(lambda s, t, d: ReviewKD(s, t))


def test_reviewkd_calls_a_weight_official_only_for_a_pair_the_official_script_ran():
    from hintlearn_mini.bench import recipes
    from hintlearn_mini.methods.reviewkd import default_weight, official_weight
    from hintlearn_mini.profiles import PROFILES

    assert official_weight("resnet32", "resnet8") is None and default_weight("resnet32", "resnet8") == 1.0
    assert official_weight("resnet32x4", "resnet8x4") == default_weight("resnet32x4", "resnet8x4") == 5.0
    assert official_weight("resnet56", "resnet20") == 0.6
    paper = PROFILES["paper"].for_pair("wrn_40_2", "wrn_16_2")
    built = recipes.REVIEWKD.build(paper, build_model("wrn_40_2", 100), None, build_model("wrn_16_2", 100))
    assert built.weight == 5.0
