"""Hand-checked values and invariances of the feature losses (FitNets, AT, FSP)."""
import pytest
import torch
import torch.nn.functional as F

from hintlearn_mini.losses import at_loss, attention_map, fsp_loss, fsp_matrix, hint_loss


def test_hint_loss_is_the_element_mean_of_squares():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([1.0, 2.0, 3.0, 4.0, 0, 0, 0, 0]).view(2, 1, 2, 2)
    assert hint_loss(a, b).item() == pytest.approx(30 / 8)


def test_hint_loss_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 16, 8, 8\) vs \(2, 32, 8, 8\)"):
        hint_loss(torch.zeros(2, 16, 8, 8), torch.zeros(2, 32, 8, 8))


def test_attention_map_hand_computed():
    # two channels, 1×2 positions: mean_c A² = [(1+9)/2, (4+0)/2] = [5, 2], normalised
    feat = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])
    expected = torch.tensor([[5.0, 2.0]]) / (29 ** 0.5)
    torch.testing.assert_close(attention_map(feat), expected)


def test_attention_map_ignores_scale_and_channel_count():
    torch.manual_seed(0)
    feat = torch.randn(3, 8, 4, 4)
    torch.testing.assert_close(attention_map(feat * 7.5), attention_map(feat))
    torch.testing.assert_close(attention_map(torch.cat([feat, feat], 1)), attention_map(feat))
    assert torch.allclose(attention_map(feat).norm(dim=1), torch.ones(3))
    assert attention_map(feat).shape == (3, 16)


@pytest.mark.parametrize("p", [2, 3, 4])
def test_attention_map_of_bfloat16_features_is_the_float32_map_of_their_values(p):
    # p = 2 reduces the bf16 map in float32 without a copy; other p cast first: the
    # same numbers as the formula on the float32 copy, gradients back in bfloat16
    torch.manual_seed(0)
    feat = torch.relu(torch.randn(2, 8, 4, 4)).bfloat16().contiguous(memory_format=torch.channels_last)
    feat[0, :, 0, 0] = 0  # a position where every channel is zero: no NaN
    feat.requires_grad_()
    reference = feat.detach().float().requires_grad_()
    expected = F.normalize(reference.pow(p).mean(1).flatten(1), dim=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = attention_map(feat, p)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(expected)
    (got * weights).sum().backward()
    (expected * weights).sum().backward()
    assert feat.grad.dtype == torch.bfloat16 and torch.isfinite(feat.grad.float()).all()
    torch.testing.assert_close(feat.grad.float(), reference.grad.bfloat16().float())


def test_at_loss_is_mean_of_squared_map_differences():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 4, 4), torch.randn(2, 16, 4, 4)
    manual = ((attention_map(s) - attention_map(t)) ** 2).mean()
    torch.testing.assert_close(at_loss(s, t), manual)
    assert at_loss(s, s * 3).item() == pytest.approx(0, abs=1e-7)


def test_at_loss_pools_the_larger_map():
    torch.manual_seed(0)
    big, small = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(at_loss(big, small), at_loss(F.adaptive_avg_pool2d(big, 4), small))
    torch.testing.assert_close(at_loss(small, big), at_loss(small, F.adaptive_avg_pool2d(big, 4)))


@pytest.mark.parametrize("a, b, match", [
    ((2, 4, 8, 8), (3, 4, 8, 8), "batch sizes differ"),
    ((2, 4, 8, 4), (2, 4, 4, 8), "cannot be matched"),
    ((2, 64), (2, 4, 8, 8), r"\(B, C, H, W\)"),
])
def test_at_loss_errors_name_both_shapes(a, b, match):
    with pytest.raises(ValueError, match=match) as error:
        at_loss(torch.zeros(a), torch.zeros(b))
    assert str(tuple(a)) in str(error.value)


def test_fsp_matrix_hand_computed():
    # one image, 1×2 positions: f1 channels [1,2],[3,4]; f2 channel [5,6]
    f1 = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    f2 = torch.tensor([[[[5.0, 6.0]]]])
    expected = torch.tensor([[[(5 + 12) / 2], [(15 + 24) / 2]]])
    torch.testing.assert_close(fsp_matrix(f1, f2), expected)


def test_fsp_matrix_transpose_and_gram_symmetry():
    torch.manual_seed(0)
    f1, f2 = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    assert fsp_matrix(f1, f2).shape == (2, 3, 5)
    torch.testing.assert_close(fsp_matrix(f2, f1), fsp_matrix(f1, f2).transpose(1, 2))
    gram = fsp_matrix(f1, f1)
    torch.testing.assert_close(gram, gram.transpose(1, 2))
    assert (torch.linalg.eigvalsh(gram) > -1e-5).all()  # a Gram matrix is positive semi-definite


def test_fsp_matrix_pools_the_larger_map():
    torch.manual_seed(0)
    f1, f2 = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(fsp_matrix(f1, f2), fsp_matrix(F.adaptive_avg_pool2d(f1, 4), f2))


def test_fsp_matrix_gradients_match_autograd():
    # fsp_matrix writes its backward pass out (losses._PositionSum): its gradients must
    # be autograd's of the same sum, with and without pooling, in either layout
    torch.manual_seed(0)
    for size in (4, 2):
        for layout in (torch.contiguous_format, torch.channels_last):
            f1 = torch.randn(2, 3, 4, 4).contiguous(memory_format=layout).requires_grad_()
            f2 = torch.randn(2, 5, size, size).contiguous(memory_format=layout).requires_grad_()
            weights = torch.randn(2, 3, 5)
            (fsp_matrix(f1, f2) * weights).sum().backward()
            pooled = F.adaptive_avg_pool2d(f1, size)
            reference = torch.einsum("bihw,bjhw->bij", pooled, f2) / size ** 2
            expected = torch.autograd.grad((reference * weights).sum(), (f1, f2))
            torch.testing.assert_close(f1.grad, expected[0])
            torch.testing.assert_close(f2.grad, expected[1])


def test_fsp_matrix_gradients_come_back_channels_last():
    # both gradients in the maps' own layout, so no conversion where they join the
    # network's gradients (more than half of FSP's overhead over KD's step, bench
    # --step-costs). Seen by hooks on maps inside a graph: a leaf's .grad is
    # converted to the leaf's layout anyway
    torch.manual_seed(0)
    leaves = [torch.randn(2, c, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
              for c in (3, 5)]
    maps, grads = [leaf.clone() for leaf in leaves], []
    for m in maps:
        m.register_hook(grads.append)
    fsp_matrix(*maps).square().sum().backward()
    for g in grads:
        assert g.is_contiguous(memory_format=torch.channels_last), g.stride()


def test_fsp_loss_sums_pairwise_means():
    torch.manual_seed(0)
    s = [(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)), (torch.randn(2, 5, 4, 4), torch.randn(2, 6, 2, 2))]
    t = [(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)), (torch.randn(2, 5, 4, 4), torch.randn(2, 6, 2, 2))]
    manual = sum(((fsp_matrix(*a) - fsp_matrix(*b)) ** 2).mean() for a, b in zip(s, t))
    torch.testing.assert_close(fsp_loss(s, t), manual)


def test_fsp_loss_channel_mismatch_names_both_shapes():
    s = [(torch.zeros(2, 16, 4, 4), torch.zeros(2, 32, 4, 4))]
    t = [(torch.zeros(2, 16, 4, 4), torch.zeros(2, 64, 4, 4))]
    with pytest.raises(ValueError, match=r"\(2, 32, 4, 4\).*\(2, 64, 4, 4\)"):
        fsp_loss(s, t)
    with pytest.raises(ValueError, match="same, non-zero number"):
        fsp_loss(s, t + t)
