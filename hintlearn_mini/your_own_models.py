"""Distilling your own models: any classifier behind the interface the book's methods use.

Every method of the book reads a network's intermediate tensors from
``model(x, features=True)``, which returns ``(logits, models.Features)``. The book's
CIFAR networks answer that natively. :class:`TappedModel` makes any other classifier (a
torchvision ResNet, a MobileNet, your own) answer it too: you name the layers that play
the part of its stages, and which one gives the pooled vector, as nodes of
``torchvision.models.feature_extraction`` (``layer_shapes`` lists them with their output
shapes, to choose from). The methods then size their adapters from the real shapes, as
they do for the book's networks, and train through the same ``Distiller`` interface.

A tapped model has no pre-activation taps: ``Features.preact`` holds the stage outputs
themselves (ReviewKD's teacher side uses them).

What compression buys at the edge is measured by ``parameter_count``, ``size_on_disk_mb``
and ``cpu_latency_ms``.

Chapter: ``book/09_your_own_models.ipynb``.
"""
from __future__ import annotations

import io
import statistics
import time

import torch
from torch import Tensor, nn

from .models import Features, tap_layers

__all__ = ["TappedModel", "layer_shapes", "output_node", "parameter_count", "size_on_disk_mb", "cpu_latency_ms"]


def output_node(model: nn.Module) -> str:
    """The name of the node that computes ``model``'s output (e.g. ``"fc"`` for a ResNet)."""
    from torchvision.models.feature_extraction import get_graph_node_names

    return get_graph_node_names(model)[1][-1]


class TappedModel(nn.Module):
    """``model`` answering ``(x, features=True)`` with ``(logits, Features)``.

    Args:
        model: any classifier whose forward pass ``torch.fx`` can trace (torchvision's can).
        stages: names of the layers whose outputs are the stages, shallow to deep, e.g.
            ``["layer1", "layer2", "layer3", "layer4"]`` for a torchvision ResNet.
        pooled: the layer that gives the pooled vector before the classifier (flattened
            to (B, C)), e.g. ``"flatten"``.
        stem: the layer whose output is the stem (FSP's first map); default the first stage.

    Only the feature extractor is a sub-module: it *shares* every parameter and buffer
    with ``model``, so training the tapped model trains ``model``. ``tapped.network`` is
    ``model`` itself, the network you deploy. A name that does not exist raises a
    ``ValueError`` with the close matches and every valid name.
    """

    def __init__(self, model: nn.Module, stages: list[str], pooled: str, stem: str | None = None):
        super().__init__()
        if not stages:
            raise ValueError("TappedModel: name at least one stage layer, e.g. stages=['layer2']")
        roles = {name: f"stage{i}" for i, name in enumerate(stages, start=1)}
        for name, role in ((pooled, "pooled"), (stem, "stem"), (output_node(model), "logits")):
            if name is None:
                continue
            if name in roles:
                raise ValueError(f"TappedModel: layer {name!r} is given both as {roles[name]} and as {role}; "
                                 f"a layer can play one part only.")
            roles[name] = role
        self.extractor = tap_layers(model, roles)
        self.__dict__["network"] = model  # not registered: its weights are the extractor's, saved once
        self.stage_names, self.pooled_name, self.stem_name = list(stages), pooled, stem
        self.architecture = type(model).__name__

    def forward(self, x: Tensor, features: bool = False):
        out = self.extractor(x)
        if not features:
            return out["logits"]
        stages = [out[f"stage{i}"] for i in range(1, len(self.stage_names) + 1)]
        return out["logits"], Features(stem=out.get("stem", stages[0]), stages=stages, preact=stages,
                                       pooled=out["pooled"].flatten(1))

    def extra_repr(self) -> str:  # the run cache keys on repr()
        return f"{self.architecture}, stages={self.stage_names}, pooled={self.pooled_name!r}, stem={self.stem_name!r}"


def layer_shapes(model: nn.Module, depth: int = 1, input_size: int = 32) -> dict[str, tuple[int, ...]]:
    """Output shape (per image) of every layer down to ``depth`` levels of nesting, in order.

    ``depth=1`` gives the top-level children (``"layer1"``, ``"avgpool"``, ...), ``depth=2``
    one level further (``"features.3"``): the names to choose a :class:`TappedModel`'s
    stages from. A module that torch.fx keeps whole (no node inside it) stands for its
    children at every depth below it.
    """
    from torchvision.models.feature_extraction import get_graph_node_names

    names = [name for name, _ in model.named_modules() if name and name.count(".") < depth]
    names = [n for n in names if not any(other.startswith(n + ".") for other in names)]  # leaves at this depth
    names = _traced_names(names, get_graph_node_names(model)[1])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device)
        out = tap_layers(model, names)(x)
    model.train(was_training)
    return {name: tuple(out[name].shape[1:]) for name in names}


def _traced_names(names: list[str], nodes: list[str]) -> list[str]:
    """Each module name as torch.fx traced it: the name itself when it is a node or the
    prefix of nodes, else its nearest ancestor that is (torchvision keeps some modules,
    such as a RegNet's stem, whole as one leaf node: ``stem.0`` is then ``stem``)."""
    traced = set(nodes) | {".".join(n.split(".")[:i]) for n in nodes for i in range(1, n.count(".") + 1)}
    found: list[str] = []
    for name in names:
        while name and name not in traced:
            name = name.rpartition(".")[0]
        if name and name not in found:
            found.append(name)
    return found


def parameter_count(model: nn.Module) -> int:
    """All parameters of ``model`` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def size_on_disk_mb(model: nn.Module) -> float:
    """Megabytes (10⁶ bytes) of ``torch.save(model.state_dict())``: what a device would store."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def cpu_latency_ms(model: nn.Module, input_size: int = 32, batch_size: int = 1, repeats: int = 30,
                   warmup: int = 5, threads: int | None = None) -> float:
    """Median milliseconds of one inference forward pass on the CPU (eval mode, no gradients)
    on a batch of ``batch_size`` images; divide by ``batch_size`` for a time per image.

    ``threads`` sets ``torch.set_num_threads`` for the measurement (an edge device often
    has one core to spare); the previous value is restored.
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, 3, input_size, input_size)
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + repeats):
                start = time.perf_counter()
                model(x)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
        model.train(was_training)
    return 1000 * statistics.median(times)


# ----------------------------------------------------------------- to the edge
def deployable(model: nn.Module) -> nn.Module:
    """What ships: a ``TappedModel``'s plain network (the taps are for training only)."""
    return model.network if isinstance(model, TappedModel) else model


def multiply_adds(model: nn.Module, input_size: int = 32) -> int:
    """Multiply-accumulate operations of one forward pass on one image, eval mode:
    ``torch.utils.flop_counter`` counts the FLOPs of convolutions and matrix products
    (2 per multiply-add), so multiply-adds = FLOPs / 2. Element-wise work (BatchNorm,
    activations, pooling) is not counted, as in the papers' "MACs"."""
    from torch.utils.flop_counter import FlopCounterMode

    network = deployable(model)
    was_training = network.training
    network.eval()
    x = torch.zeros(1, 3, input_size, input_size, device=next(network.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(x)
    network.train(was_training)
    return counter.get_total_flops() // 2


def export_onnx(model: nn.Module, path, input_size: int = 32) -> Path:
    """The deployable network (eval mode, float32, CPU) to an ONNX file at ``path`` with a
    dynamic batch dimension (``torch.onnx.export(..., dynamo=True)``); returns the path.
    Check it with :func:`onnx_max_difference`."""
    from pathlib import Path

    network = deployable(model).float().cpu().eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(2, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.onnx.export(network, (x,), dynamo=True, dynamic_shapes=({0: batch},),
                                    input_names=["images"], output_names=["logits"], verbose=False)
    program.save(str(path))
    return path


def onnx_session(path, threads: int = 1):
    """An ONNX Runtime CPU session of the model at ``path``, on ``threads`` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(path, images: Tensor, batch_size: int = 500, threads: int = 1) -> Tensor:
    """Logits (N, classes) of the ONNX model for normalised images (N, 3, H, W)."""
    session = onnx_session(path, threads)
    name = session.get_inputs()[0].name
    return torch.cat([torch.from_numpy(session.run(None, {name: images[i:i + batch_size].numpy()})[0])
                      for i in range(0, len(images), batch_size)])


def onnx_max_difference(path, model: nn.Module, images: Tensor) -> float:
    """Largest absolute difference between the ONNX model's logits and PyTorch's (float32,
    eval mode) on ``images``: how faithfully the export computes the network."""
    network = deployable(model).float().cpu().eval()
    with torch.no_grad():
        reference = network(images)
    return float((onnx_logits(path, images) - reference).abs().max())


def quantize_int8(path, out, calibration_images: Tensor) -> Path:
    """Post-training static int8 quantisation of the ONNX model at ``path`` with ONNX
    Runtime (``quant_pre_process``, then ``quantize_static`` in QDQ format, per-channel
    weights), its activation ranges calibrated on ``calibration_images`` (normalised,
    a few hundred training images). Returns the quantised model's path ``out``."""
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Calibration(CalibrationDataReader):
        def __init__(self, images: Tensor, name: str, batch_size: int = 50):
            self.batches = iter([{name: images[i:i + batch_size].numpy()}
                                 for i in range(0, len(images), batch_size)])

        def get_next(self):
            return next(self.batches, None)

    out = Path(out)
    prepared = out.with_name(out.stem + "-prepared.onnx")
    quant_pre_process(str(path), str(prepared))
    name = onnx_session(prepared).get_inputs()[0].name
    quantize_static(str(prepared), str(out), Calibration(calibration_images, name), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    prepared.unlink(missing_ok=True)
    return out


def onnx_latency_ms(path, input_size: int = 32, batch_size: int = 1, repeats: int = 30, warmup: int = 5,
                    threads: int = 1) -> tuple[float, float, float]:
    """(median, 10th and 90th percentile) milliseconds of one ONNX Runtime inference of a
    batch of ``batch_size`` images on ``threads`` threads."""
    import numpy as np

    session = onnx_session(path, threads)
    name = session.get_inputs()[0].name
    x = np.zeros((batch_size, 3, input_size, input_size), dtype=np.float32)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        session.run(None, {name: x})
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - start))
    ordered = sorted(times)
    return statistics.median(times), ordered[len(ordered) // 10], ordered[(9 * len(ordered)) // 10]
