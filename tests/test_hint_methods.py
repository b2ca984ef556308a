"""FitNets, Attention Transfer and FSP as distillers: shapes, errors, frozen teacher."""
import pytest
import torch

from conftest import random_images
from hintlearn_mini.methods.attention import AttentionTransfer
from hintlearn_mini.methods.fitnets import ConvRegressor, FitNets
from hintlearn_mini.methods.fsp import FSP, consecutive_pairs
from hintlearn_mini.models import build_model
from hintlearn_mini.train import fit

METHODS = [
    lambda s, t: FitNets(s, t),
    lambda s, t: FitNets(s, t, kd_weight=0.9, ce_weight=0.1),
    lambda s, t: AttentionTransfer(s, t),
    lambda s, t: FSP(s, t, ce_weight=1.0),
]


@pytest.mark.parametrize("make", METHODS)
def test_gradients_reach_the_student_never_the_teacher(make):
    torch.manual_seed(0)
    distiller = make(build_model("resnet8"), build_model("resnet14"))
    distiller.train()
    logits, losses = distiller(torch.randn(4, 3, 32, 32), torch.arange(4))
    assert logits.shape == (4, 10)
    sum(losses.values()).backward()
    assert distiller.student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert not distiller.teacher.training


@pytest.mark.parametrize("make", METHODS)
def test_teacher_weights_and_batchnorm_statistics_survive_training(make):
    torch.manual_seed(0)
    teacher = build_model("resnet14")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller = make(build_model("resnet8"), teacher)
    data = random_images(32)
    fit(distiller, data, None, epochs=1, batch_size=16, lr=0.01, progress=False)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("student_shape, teacher_shape, layer", [
    ((16, 16, 16), (32, 16, 16), torch.nn.Conv2d),          # same size: 1×1
    ((16, 32, 32), (32, 16, 16), torch.nn.Conv2d),          # twice as large: stride 2
    ((16, 8, 8), (32, 16, 16), torch.nn.ConvTranspose2d),   # half as large: transposed
    ((16, 10, 10), (32, 8, 8), torch.nn.Conv2d),            # kernel 3×3, no padding
])
def test_regressor_maps_to_the_hint_shape(student_shape, teacher_shape, layer):
    regressor = ConvRegressor(student_shape, teacher_shape)
    assert isinstance(regressor[0], layer)
    out = regressor(torch.randn(2, *student_shape))
    assert out.shape == (2, *teacher_shape)
    assert out.min() >= 0  # BatchNorm + ReLU, like a post-ReLU hint


def test_regressor_rejects_a_smaller_guided_layer():
    with pytest.raises(ValueError, match=r"\(16, 4, 4\).*\(32, 16, 16\)"):
        ConvRegressor((16, 4, 4), (32, 16, 16))


def test_fitnets_sizes_its_regressor_for_a_thin_student():
    distiller = FitNets(build_model("resnet20_half"), build_model("resnet32"))
    conv = distiller.regressor[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (16, 32, (1, 1))


def test_fitnets_guided_parameters_stop_at_the_guided_stage():
    distiller = FitNets(build_model("resnet8"), build_model("resnet32"), stage=2)
    guided = {id(p) for p in distiller.guided_parameters()}
    student = distiller.student
    assert all(id(p) in guided for p in student.stages[1].parameters())
    assert all(id(p) in guided for p in distiller.regressor.parameters())
    assert not any(id(p) in guided for p in student.stages[2].parameters())
    assert not any(id(p) in guided for p in student.fc.parameters())


@pytest.mark.parametrize("make", [lambda s, t: FitNets(s, t, stage=4),
                                  lambda s, t: AttentionTransfer(s, t, stages=(0, 1))])
def test_a_stage_that_does_not_exist_is_named(make):
    with pytest.raises(ValueError, match=r"does not exist; the networks have stages 1\.\.3"):
        make(build_model("resnet8"), build_model("resnet32"))


def test_attention_transfer_accepts_different_widths():
    distiller = AttentionTransfer(build_model("resnet8"), build_model("resnet8x4"))
    _, losses = distiller(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert losses["at"].item() > 0


def test_fsp_needs_equal_channels_and_says_so():
    with pytest.raises(ValueError, match="channel counts differ"):
        FSP(build_model("resnet8"), build_model("resnet8x4"))


def test_fsp_pairs_are_consecutive_taps():
    _, feats = build_model("resnet8")(torch.randn(2, 3, 32, 32), features=True)
    pairs = consecutive_pairs(feats)
    assert [(a.shape[1], b.shape[1]) for a, b in pairs] == [(16, 16), (16, 32), (32, 64)]


def test_fsp_feature_parameters_exclude_the_classifier():
    distiller = FSP(build_model("resnet8"), build_model("resnet32"))
    ids = {id(p) for p in distiller.feature_parameters()}
    assert not any(id(p) in ids for p in distiller.student.fc.parameters())
    assert len(ids) == len(list(distiller.student.parameters())) - 2
