import pytest
import torch
import torchvision

from hintlearn_mini.models import MODEL_NAMES, Features, build_model, count_parameters, tap_layers


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_logits_and_feature_shapes(name):
    model = build_model(name, num_classes=7)
    x = torch.randn(2, 3, 32, 32)
    logits, feats = model(x, features=True)
    assert logits.shape == (2, 7)
    assert torch.equal(logits, model(x))
    spatial = [tuple(s.shape[2:]) for s in feats.stages]
    assert spatial == [(32, 32), (16, 16), (8, 8)]
    channels = [s.shape[1] for s in feats.stages]
    assert channels[1] == 2 * channels[0] and channels[2] == 2 * channels[1]
    assert feats.pooled.shape == (2, channels[2])
    assert [p.shape for p in feats.preact] == [s.shape for s in feats.stages]


@pytest.mark.parametrize("name, millions", [
    ("resnet8", 0.08), ("resnet20", 0.28), ("resnet32", 0.47), ("resnet56", 0.86),
    ("resnet110", 1.74), ("resnet8x4", 1.23), ("resnet32x4", 7.43),
    ("wrn_16_1", 0.18), ("wrn_16_2", 0.70), ("wrn_40_1", 0.57), ("wrn_40_2", 2.26)])
def test_parameter_counts_match_the_official_models(name, millions):
    # METHODS.md §2.1: counts of the official definitions with 100 classes
    assert round(count_parameters(build_model(name, 100)) / 1e6, 2) == millions


@pytest.mark.parametrize("name", ["resnet8", "resnet32x4"])
def test_preactivation_taps_keep_negative_values(name):
    torch.manual_seed(0)
    _, feats = build_model(name).train()(torch.randn(8, 3, 32, 32), features=True)
    for post, pre in zip(feats.stages, feats.preact):
        assert pre.min() < 0, "a pre-activation tap without negatives was overwritten by a ReLU"
        assert post.min() >= 0
        torch.testing.assert_close(post, pre.relu())


def test_wrn_preact_taps_never_touch_running_statistics():
    torch.manual_seed(0)
    model = build_model("wrn_16_1").train()
    x = torch.randn(4, 3, 32, 32)
    model(x)
    plain = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    model2 = build_model("wrn_16_1").train()
    model2(x, features=True)
    for key, value in model2.state_dict().items():
        assert torch.equal(value, plain[key]), key
    _, feats = model2(x, features=True)
    assert min(p.min() for p in feats.preact) < 0


def test_features_shapes_dictionary():
    _, feats = build_model("resnet8")(torch.randn(1, 3, 32, 32), features=True)
    assert isinstance(feats, Features)
    assert feats.shapes()["stage2"] == (32, 16, 16)
    assert feats.shapes()["pooled"] == (64,)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="resnet8x4"):
        build_model("resnet9")


def test_tap_layers_on_a_torchvision_model():
    model = torchvision.models.resnet18(num_classes=10).eval()
    tapped = tap_layers(model, ["layer2", "layer4"])
    out = tapped(torch.randn(2, 3, 64, 64))
    assert out["layer2"].shape == (2, 128, 8, 8)
    assert out["layer4"].shape == (2, 512, 2, 2)


def test_tap_layers_error_lists_close_matches_and_valid_names():
    model = torchvision.models.resnet18()
    with pytest.raises(ValueError) as error:
        tap_layers(model, ["layer5", "layer2"])
    message = str(error.value)
    assert "'layer5'" in message and "close matches" in message
    assert "layer4" in message and "Valid names" in message
