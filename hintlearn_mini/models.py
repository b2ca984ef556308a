"""CIFAR networks of the distillation papers, with their intermediate features exposed.

The ResNets follow He et al. (2016), "Deep Residual Learning for Image Recognition",
section 4.2 (depth 6n+2, three stages), with the widths of the CRD authors' code
(RepDistiller ``models/resnet.py``): 16/32/64, or 32 | 64/128/256 for the "x4" models.
The wide ResNets follow Zagoruyko & Komodakis (2016), "Wide Residual Networks"
(pre-activation blocks, depth 6n+4, widths 16k/32k/64k).

Every model answers ``model(x)`` with logits and ``model(x, features=True)`` with
``(logits, Features)``. :class:`Features` holds what the book's methods tap:

* ``stem``   (B, C0, 32, 32): the stem's output (f0 in RepDistiller's numbering);
* ``stages`` [f1, f2, f3]: each stage's output, (B, C, 32, 32), (B, 2C, 16, 16), (B, 4C, 8, 8);
* ``preact`` the same three tensors *before* the stage's final ReLU. The last
  activation of each block is an out-of-place ``F.relu``, so the tapped tensor keeps
  its negative values (an in-place ReLU would silently overwrite it);
* ``pooled`` (B, 4C): the globally pooled vector that feeds the classifier.

Models from elsewhere (torchvision's) are tapped by layer name with :func:`tap_layers`.

Chapter: ``book/01_teacher_and_student.ipynb``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Features", "CifarResNet", "WideResNet", "build_model", "MODEL_NAMES",
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
    "resnet20_half", "resnet44_half", "resnet8x4", "resnet32x4", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2",
    "count_parameters", "tap_layers",
]


@dataclass
class Features:
    """The intermediate tensors of one forward pass (see the module docstring)."""

    stem: Tensor
    stages: list[Tensor]
    preact: list[Tensor]
    pooled: Tensor

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes by name, e.g. ``{"stage1": (16, 32, 32), ...}``."""
        out = {"stem": tuple(self.stem.shape[1:])}
        for i, (post, pre) in enumerate(zip(self.stages, self.preact), start=1):
            out[f"stage{i}"] = tuple(post.shape[1:])
            out[f"stage{i}_preact"] = tuple(pre.shape[1:])
        out["pooled"] = tuple(self.pooled.shape[1:])
        return out


# --------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut; returns ``(out, preact)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)  # never tapped
        preact = self.bn2(self.conv2(out)) + self.shortcut(x)
        return F.relu(preact), preact  # out-of-place: preact keeps its negatives


class CifarResNet(nn.Module):
    """CIFAR ResNet with ``blocks`` basic blocks per stage (depth = 6·blocks + 2).

    ``widths`` = (stem, stage1, stage2, stage3): (16, 16, 32, 64) for resnet8..110,
    (32, 64, 128, 256) for resnet8x4 / resnet32x4.
    """

    def __init__(self, blocks: int, widths=(16, 16, 32, 64), num_classes: int = 10):
        super().__init__()
        stem, *stage_widths = widths
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.stages = nn.ModuleList()
        in_channels = stem
        for i, width in enumerate(stage_widths):
            stride = 1 if i == 0 else 2
            stage = nn.ModuleList()
            for b in range(blocks):
                stage.append(BasicBlock(in_channels, width, stride if b == 0 else 1))
                in_channels = width
            self.stages.append(stage)
        self.fc = nn.Linear(in_channels, num_classes)
        _init_weights(self)

    def forward(self, x: Tensor, features: bool = False):
        stem = F.relu(self.bn1(self.conv1(x)))  # (B, C0, 32, 32)
        h, stages, preacts = stem, [], []
        for stage in self.stages:
            for block in stage:
                h, pre = block(h)
            stages.append(h)
            preacts.append(pre)
        pooled = F.adaptive_avg_pool2d(h, 1).flatten(1)  # (B, C3)
        logits = self.fc(pooled)
        if not features:
            return logits
        return logits, Features(stem, stages, preacts, pooled)


# --------------------------------------------------------------------- Wide ResNet
class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus shortcut (on the pre-activated input)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.projection = None
        if in_channels != out_channels or stride != 1:
            self.projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        activated = F.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(F.relu(self.bn2(out)))
        shortcut = x if self.projection is None else self.projection(activated)
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-depth-k for CIFAR (pre-activation; depth = 6n + 4, dropout 0).

    Feature taps follow the official code: ``stages`` are the raw residual sums of the
    three groups (a pre-activation network has no ReLU at a stage's end), and
    ``preact`` are those sums passed through the *next* BatchNorm (the first BN of the
    next group, or the final BN), still without ReLU. In training mode that BN is
    applied with the batch statistics but without touching its running statistics,
    so tapping features never changes the model.
    """

    def __init__(self, depth: int, widen: int, num_classes: int = 10):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 (16, 22, 28, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.stages = nn.ModuleList()
        for i in range(3):
            stride = 1 if i == 0 else 2
            self.stages.append(nn.Sequential(*[
                PreActBlock(widths[i] if b == 0 else widths[i + 1], widths[i + 1], stride if b == 0 else 1)
                for b in range(n)
            ]))
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        _init_weights(self)

    def forward(self, x: Tensor, features: bool = False):
        stem = self.conv1(x)
        h, stages = stem, []
        for stage in self.stages:
            h = stage(h)
            stages.append(h)
        pooled = F.adaptive_avg_pool2d(F.relu(self.bn(h)), 1).flatten(1)
        logits = self.fc(pooled)
        if not features:
            return logits
        next_bns = [self.stages[1][0].bn1, self.stages[2][0].bn1, self.bn]
        preacts = [_bn_without_update(bn, s) for bn, s in zip(next_bns, stages)]
        return logits, Features(stem, stages, preacts, pooled)


def _bn_without_update(bn: nn.BatchNorm2d, x: Tensor) -> Tensor:
    """Apply ``bn`` as the network would, but never update its running statistics."""
    if bn.training:
        return F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, BN weight 1 / bias 0, as the official code."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


# ------------------------------------------------------------------ constructors
def resnet8(num_classes=10): return CifarResNet(1, num_classes=num_classes)
def resnet14(num_classes=10): return CifarResNet(2, num_classes=num_classes)
def resnet20(num_classes=10): return CifarResNet(3, num_classes=num_classes)
def resnet32(num_classes=10): return CifarResNet(5, num_classes=num_classes)
def resnet44(num_classes=10): return CifarResNet(7, num_classes=num_classes)
def resnet56(num_classes=10): return CifarResNet(9, num_classes=num_classes)
def resnet110(num_classes=10): return CifarResNet(18, num_classes=num_classes)
def resnet20_half(num_classes=10):
    """FitNets' "thin and deep" idea at CIFAR scale: resnet20's depth at half the width
    (8 | 8/16/32), about as many parameters as resnet8 but three blocks per stage."""
    return CifarResNet(3, (8, 8, 16, 32), num_classes)
def resnet44_half(num_classes=10):
    """FitNets' thin-and-deep student for the resnet32 teacher: deeper (44 layers) and
    thinner (8 | 8/16/32) than the teacher, with about a third of its parameters."""
    return CifarResNet(7, (8, 8, 16, 32), num_classes)
def resnet8x4(num_classes=10): return CifarResNet(1, (32, 64, 128, 256), num_classes)
def resnet32x4(num_classes=10): return CifarResNet(5, (32, 64, 128, 256), num_classes)
def wrn_16_1(num_classes=10): return WideResNet(16, 1, num_classes)
def wrn_16_2(num_classes=10): return WideResNet(16, 2, num_classes)
def wrn_40_1(num_classes=10): return WideResNet(40, 1, num_classes)
def wrn_40_2(num_classes=10): return WideResNet(40, 2, num_classes)

_CONSTRUCTORS = {f.__name__: f for f in (
    resnet8, resnet14, resnet20, resnet32, resnet44, resnet56, resnet110, resnet20_half,
    resnet44_half, resnet8x4, resnet32x4, wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2)}
MODEL_NAMES = tuple(_CONSTRUCTORS)


def build_model(name: str, num_classes: int = 10) -> nn.Module:
    """Build a model from its name (used where a name is stored: manifests, profiles).

    ``"torchvision.<name>"`` builds ``torchvision.models.<name>(num_classes=...)``, untrained.
    """
    if name.startswith("torchvision."):
        import torchvision

        builder = name.removeprefix("torchvision.")
        if builder not in torchvision.models.list_models(torchvision.models):
            close = difflib.get_close_matches(builder, torchvision.models.list_models(torchvision.models))
            raise ValueError(f"torchvision has no classification model {builder!r}; close matches: {close}")
        return torchvision.models.get_model(builder, weights=None, num_classes=num_classes)
    if name not in _CONSTRUCTORS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)} "
                         f"or torchvision.<model> (e.g. torchvision.resnet18)")
    return _CONSTRUCTORS[name](num_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------- any model: taps by name
def tap_layers(model: nn.Module, layers: list[str] | dict[str, str]) -> nn.Module:
    """Wrap ``model`` so that calling it returns ``{name: tensor}`` for the given layers.

    Uses :func:`torchvision.models.feature_extraction.create_feature_extractor`. Node
    names are those of ``get_graph_node_names(model)`` (e.g. ``"layer2"`` or
    ``"layer2.1.relu_1"`` for a torchvision ResNet). A name that does not exist raises a
    ``ValueError`` listing the close matches and the valid names.

    The extractor *shares* its modules with ``model``: calling ``.train()`` on it puts
    the model's BatchNorm layers in training mode too.
    """
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    wanted = list(layers) if not isinstance(layers, dict) else list(layers.keys())
    _, nodes = get_graph_node_names(model)
    nodes = [n for n in nodes if n != "x"]
    # a module's name (e.g. "layer2") stands for its last node, as torchvision allows
    prefixes = {".".join(n.split(".")[:i]) for n in nodes for i in range(1, n.count(".") + 1)}
    valid = sorted(prefixes - set(nodes)) + nodes
    missing = [n for n in wanted if n not in valid]
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
            hints.append(f"  {name!r}: close matches {close}" if close else f"  {name!r}: no close match")
        raise ValueError(
            f"{type(model).__name__} has no layer(s) named {missing}.\n" + "\n".join(hints)
            + f"\nValid names ({len(valid)}): {', '.join(valid)}"
        )
    return_nodes = layers if isinstance(layers, dict) else {n: n for n in wanted}
    return create_feature_extractor(model, return_nodes=return_nodes)
