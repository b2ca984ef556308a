"""Any classifier, tapped by layer name, distilled by every method of the book."""
import pytest
import torch
from torchvision.models import mobilenet_v3_small, resnet18

from conftest import random_images
from hintlearn_mini.methods import CRD, FSP, KD, AttentionTransfer, FitNets, ReviewKD
from hintlearn_mini.models import build_model
from hintlearn_mini.train import fit
from hintlearn_mini.your_own_models import (TappedModel, cpu_latency_ms, layer_shapes, output_node,
                                            parameter_count, size_on_disk_mb)

TEACHER_STAGES = ["layer1", "layer2", "layer3", "layer4"]
STUDENT_STAGES = ["features.1", "features.3", "features.8", "features.12"]


def teacher():
    torch.manual_seed(0)
    return TappedModel(resnet18(num_classes=10), TEACHER_STAGES, pooled="flatten")


def student(model=None):
    torch.manual_seed(1)
    return TappedModel(model or mobilenet_v3_small(num_classes=10), STUDENT_STAGES, pooled="avgpool")


def test_tapped_model_gives_logits_and_features_of_the_named_layers():
    model = resnet18(num_classes=10).eval()
    tapped = TappedModel(model, TEACHER_STAGES, pooled="flatten", stem="maxpool").eval()
    x = torch.randn(2, 3, 32, 32)
    logits, feats = tapped(x, features=True)
    torch.testing.assert_close(logits, model(x))
    torch.testing.assert_close(tapped(x), model(x))
    assert [tuple(s.shape[1:]) for s in feats.stages] == [(64, 8, 8), (128, 4, 4), (256, 2, 2), (512, 1, 1)]
    assert feats.stem.shape[1:] == (64, 8, 8) and feats.pooled.shape == (2, 512)
    assert feats.preact is feats.stages


def test_the_named_stem_is_that_layers_output_and_the_first_stage_without_one():
    model = resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maxpool = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        seen = {"maxpool": maxpool, "layer1": model.layer1(maxpool)}  # same shape, other values
    with torch.no_grad():
        _, with_stem = TappedModel(model, TEACHER_STAGES, pooled="flatten", stem="maxpool")(x, features=True)
        _, without = TappedModel(model, TEACHER_STAGES, pooled="flatten")(x, features=True)
    assert seen["maxpool"].shape == seen["layer1"].shape and not torch.equal(seen["maxpool"], seen["layer1"])
    torch.testing.assert_close(with_stem.stem, seen["maxpool"])
    torch.testing.assert_close(without.stem, seen["layer1"])
    assert without.stem is without.stages[0]


def test_training_the_tapped_model_trains_the_original():
    model = mobilenet_v3_small(num_classes=10)
    tapped = student(model)
    assert tapped.network is model and "network" not in dict(tapped.named_children())
    weight, running_mean = model.features[0][0].weight.detach().clone(), model.features[0][1].running_mean.clone()
    fit(tapped, random_images(32), epochs=1, batch_size=16, progress=False, eval_every=None)
    assert not torch.equal(weight, model.features[0][0].weight)
    assert not torch.equal(running_mean, model.features[0][1].running_mean)  # buffers are shared too
    assert {k.removeprefix("extractor.") for k in tapped.state_dict()} <= set(model.state_dict())


def test_unknown_layer_names_list_close_matches_and_valid_names():
    with pytest.raises(ValueError, match=r"(?s)'layer5': close matches \['layer4'.*Valid names"):
        TappedModel(resnet18(num_classes=10), ["layer1", "layer5"], pooled="flatten")
    with pytest.raises(ValueError, match="both as stage2 and as pooled"):
        TappedModel(resnet18(num_classes=10), ["layer1", "flatten"], pooled="flatten")


def test_layer_shapes_lists_the_layers_to_choose_from():
    shapes = layer_shapes(resnet18(num_classes=10))
    assert list(shapes)[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert shapes["layer2"] == (128, 4, 4) and shapes["fc"] == (10,)
    deeper = layer_shapes(mobilenet_v3_small(num_classes=10), depth=2)
    assert deeper["features.3"] == (24, 4, 4) and "features" not in deeper
    assert output_node(resnet18(num_classes=10)) == "fc"


@pytest.mark.parametrize("method", [
    lambda s, t: KD(s, t),
    lambda s, t: FitNets(s, t, stage=2),
    lambda s, t: AttentionTransfer(s, t, stages=(1, 2, 3)),
    lambda s, t: CRD(s, t, train_labels=torch.arange(32) % 10, k=8),
    lambda s, t: ReviewKD(s, t),
], ids=["KD", "FitNets", "AT", "CRD", "ReviewKD"])
def test_every_method_distils_torchvision_models(method):
    distiller = method(student(), teacher())
    before_student = [p.detach().clone() for p in distiller.student.network.parameters()]
    before_teacher = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    history = fit(distiller, random_images(32), random_images(16, seed=1), epochs=1, batch_size=16,
                  progress=False)
    terms = set(history.epochs[0]) - {"epoch", "loss", "train_acc", "test_acc", "seconds"}
    assert terms and all(torch.isfinite(torch.tensor(history.epochs[0][t])) for t in terms)
    moved = [not torch.equal(a, b) for a, b in zip(before_student, distiller.student.network.parameters())]
    assert sum(moved) > len(moved) // 2, "the torchvision student did not train"
    for key, value in distiller.teacher.state_dict().items():
        assert torch.equal(value, before_teacher[key]), f"the torchvision teacher changed: {key}"


def test_fitnets_regressor_is_sized_from_the_named_layers():
    distiller = FitNets(student(), teacher(), stage=2)  # (24, 4, 4) -> (128, 4, 4): a 1×1 convolution
    conv = distiller.regressor[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (24, 128, (1, 1))


def test_shapes_that_cannot_be_matched_are_named():
    small_first = TappedModel(mobilenet_v3_small(num_classes=10), ["features.8", "features.3"], pooled="avgpool")
    with pytest.raises(ValueError, match=r"student's \(48, 2, 2\) to the hint's \(64, 8, 8\)"):
        FitNets(small_first, teacher(), stage=1)
    with pytest.raises(ValueError, match="channel counts differ"):
        FSP(student(), teacher())


def test_edge_measurements():
    model = build_model("resnet8")
    assert parameter_count(model) == sum(p.numel() for p in model.parameters())
    fp32_mb = parameter_count(model) * 4 / 1e6
    assert fp32_mb < size_on_disk_mb(model) < fp32_mb * 1.2 + 0.05  # weights + buffers + pickle overhead
    threads = torch.get_num_threads()
    assert cpu_latency_ms(model, repeats=3, warmup=1, threads=1) > 0
    assert torch.get_num_threads() == threads and model.training


def test_a_run_of_a_tapped_model_is_keyed_on_the_tapping_code():
    from hintlearn_mini import runs
    assert "your_own_models.py" in runs.run_sources(student())
    assert "your_own_models.py" not in runs.run_sources(mobilenet_v3_small(num_classes=10))


@pytest.mark.parametrize("family", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "regnet_y_400mf",
                                    "shufflenet_v2_x0_5", "densenet121", "convnext_tiny"])
def test_layer_shapes_works_at_every_depth_on_torchvision_families(family):
    from torchvision import models as tv
    model = getattr(tv, family)(num_classes=10)
    shapes = {depth: layer_shapes(model, depth=depth) for depth in (1, 2, 3)}
    for depth, found in shapes.items():
        assert found, f"{family}, depth {depth}: no layer"
        assert all(all(d > 0 for d in shape) for shape in found.values())
    assert len(shapes[1]) <= len(shapes[2]) <= len(shapes[3])
    last = list(shapes[3].values())[-1]
    assert last == (10,), f"{family}: the last layer at depth 3 should be the classifier, got {last}"


def test_a_plain_torchvision_model_in_a_feature_method_says_to_wrap_it():
    for method in (FitNets, AttentionTransfer, FSP, ReviewKD):
        with pytest.raises(TypeError, match=r"(?s)ResNet cannot give its intermediate features.*TappedModel\(model, "
                                            r"stages=\['layer1.1', 'layer2.1', 'layer3.1'\], pooled='avgpool'\)"):
            method(build_model("resnet8"), resnet18(num_classes=10))
    with pytest.raises(TypeError, match=r"(?s)MobileNetV3 cannot give.*pooled='avgpool'"):
        FitNets(mobilenet_v3_small(num_classes=10), build_model("resnet8"))
    KD(resnet18(num_classes=10), build_model("resnet8"))  # KD reads logits only: a plain model is fine


# ----------------------------------------------------------------- to the edge
def test_multiply_adds_of_a_hand_counted_network():
    from torch import nn
    from hintlearn_mini.your_own_models import multiply_adds
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 10))
    # conv: 32·32 positions × 4 filters × 3·3·3 weights; linear: 4096 × 10
    assert multiply_adds(net) == 32 * 32 * 4 * 27 + 4096 * 10
    assert multiply_adds(build_model("resnet8")) < multiply_adds(build_model("resnet32"))
    assert multiply_adds(student()) == multiply_adds(mobilenet_v3_small(num_classes=10))  # the network only


def test_the_onnx_export_computes_the_shipped_teacher_and_any_batch(tmp_path):
    from hintlearn_mini.your_own_models import export_onnx, onnx_logits, onnx_max_difference
    from hintlearn_mini.zoo import load_teacher
    images = torch.randn(16, 3, 32, 32)
    for name in ("resnet32_cifar10", "resnet18_cifar10"):  # the shipped teachers
        teacher = load_teacher(name)
        path = export_onnx(teacher, tmp_path / f"{name}.onnx")
        assert onnx_max_difference(path, teacher, images) < 1e-4, name
    assert onnx_logits(path, images[:1]).shape == (1, 10) and onnx_logits(path, images[:7]).shape == (7, 10)
    tapped = student()
    assert onnx_max_difference(export_onnx(tapped, tmp_path / "student.onnx"), tapped, images) < 1e-4


def test_int8_quantisation_shrinks_the_model_and_stays_close(tmp_path):
    import onnx
    from hintlearn_mini.your_own_models import export_onnx, onnx_latency_ms, onnx_logits, quantize_int8
    from hintlearn_mini.zoo import load_teacher
    teacher = load_teacher()
    fp32 = export_onnx(teacher, tmp_path / "teacher.onnx")
    calibration = torch.randn(100, 3, 32, 32)
    int8 = quantize_int8(fp32, tmp_path / "teacher-int8.onnx", calibration)
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    images = torch.randn(32, 3, 32, 32)
    with torch.no_grad():
        reference = teacher(images)
    quantised = onnx_logits(int8, images)
    assert quantised.shape == reference.shape and torch.isfinite(quantised).all()
    assert (quantised - reference).abs().max() < 0.25 * (reference.max() - reference.min())
    median, low, high = onnx_latency_ms(int8, repeats=5, warmup=1)
    assert 0 < low <= median <= high
