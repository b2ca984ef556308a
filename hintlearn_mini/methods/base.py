"""The ``Distiller`` interface shared by every method of the book.

A distiller holds the student, the frozen teacher and the method's own trainable
modules. ``forward(x, y, index=None)`` returns the student's logits and a dict of named
losses whose sum is minimised; the training loop needs nothing else.

The teacher is frozen by construction (as in mdistiller's ``Distiller``): its
parameters never require a gradient, so they are never in an optimiser, and it is put
back in ``eval()`` whenever ``.train()`` is called on the distiller, so its BatchNorm
statistics never move. Its forward pass runs under ``torch.no_grad()``.
"""
from __future__ import annotations

import functools
import inspect

import torch
from torch import Tensor, nn

from ..losses import ce_loss, kd_loss

__all__ = ["Distiller", "freeze", "probe_features", "check_stage", "output_terms"]


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and stop gradients into its parameters."""
    model.eval()
    model.requires_grad_(False)
    return model


class Distiller(nn.Module):
    """Base class: ``Distiller(student, teacher)``; subclasses implement ``forward``.

    Every distiller records the arguments it was built with, other than its networks,
    in ``self.arguments`` (defaults filled in, in the order of the signature): its
    ``repr`` prints them, and the run cache (``hintlearn_mini.runs.run_key``) keys on
    them, so a method never has to list its hyper-parameters a second time.
    """

    # True for a method that reads only the teacher's logits (KD): the training loop
    # may then hand it the logits stored for this epoch's views
    # (hintlearn_mini.teacher_outputs) instead of running the teacher on every batch.
    reads_teacher_logits = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_arguments(cls.__init__)

    def __init__(self, student: nn.Module, teacher: nn.Module):
        super().__init__()
        self.student = student
        self.teacher = freeze(teacher)
        self.stored_teacher_logits: Tensor | None = None  # (N, classes), set by fit per epoch

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={_describe(value)}" for name, value in self.arguments.items())

    def train(self, mode: bool = True) -> "Distiller":
        super().train(mode)
        self.teacher.eval()  # whatever mode the distiller is in, the teacher is frozen
        return self

    def teacher_forward(self, x: Tensor, features: bool = False):
        """The teacher's logits (and features) without building a graph."""
        with torch.no_grad():
            return self.teacher(x, features=features)

    def teacher_logits(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        """The teacher's logits for the batch ``x`` of dataset rows ``index``: read from
        the store the training loop attached for this epoch, else computed."""
        if self.stored_teacher_logits is not None and index is not None:
            return self.stored_teacher_logits[index.cpu()].to(x.device)
        return self.teacher_forward(x)

    def set_progress(self, fraction: float) -> None:
        """Called by the training loop before every step with the fraction of training
        done, in [0, 1); methods with a schedule of their own (ReviewKD's warm-up) use it."""

    def extra_parameters(self) -> list[nn.Parameter]:
        """The method's own trainable parameters (neither student nor teacher)."""
        mine = {id(p) for p in self.student.parameters()} | {id(p) for p in self.teacher.parameters()}
        return [p for p in self.parameters() if id(p) not in mine]

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, y, index)")


def _recording_arguments(init):
    """``init`` that then stores its call's arguments, networks left out, in
    ``self.arguments``. The outermost ``__init__`` returns last, so the class that was
    built has the last word over the bases it calls through ``super().__init__``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = {}
        for name, value in list(bound.arguments.items())[1:]:  # self left out
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif not isinstance(value, nn.Module):  # networks: in repr and in their weights
                arguments[name] = value
        self.__dict__["arguments"] = arguments
    return recording_init


def _describe(value) -> str:
    """An argument as ``repr`` shows it: a tensor by its shape, not its values."""
    if isinstance(value, Tensor):
        return f"<tensor {tuple(value.shape)}, {str(value.dtype).removeprefix('torch.')}>"
    return repr(value)


def probe_features(model: nn.Module, input_size: int = 32):
    """The ``Features`` of one dummy forward (2 random images, eval mode, no gradient),
    used to size a method's adapters from the real shapes."""
    if "features" not in inspect.signature(model.forward).parameters:
        raise TypeError(untapped_message(model))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, input_size, input_size, device=next(model.parameters()).device)
        _, feats = model(x, features=True)
    model.train(was_training)
    return feats


def untapped_message(model: nn.Module) -> str:
    """What to do with a model that cannot answer ``features=True`` (a plain torchvision
    model): wrap it in a ``TappedModel``, naming the layers to tap."""
    from ..your_own_models import layer_shapes

    try:  # a suggestion: the last layer of each of the three smallest maps above 1 × 1,
        # and the last 1 × 1 map (the global pooling)
        shapes = layer_shapes(model, depth=2)
        last_of_size = {}
        for name, shape in shapes.items():
            if len(shape) == 3:
                last_of_size[shape[1:]] = name
        stages = [name for size, name in last_of_size.items() if size[0] > 1][-3:]
        pooled = [n for n, shape in shapes.items() if shape[1:] == (1, 1)][-1]  # the global pooling
        call = f"TappedModel(model, stages={stages!r}, pooled={pooled!r})"
    except Exception:  # a model torch.fx cannot trace
        call = "TappedModel(model, stages=[...], pooled=...)"
    return (f"{type(model).__name__} cannot give its intermediate features (its forward takes no "
            f"features=True), which this method needs. Wrap it in a TappedModel, naming its stage "
            f"layers and the pooled layer, for example\n"
            f"    from hintlearn_mini.your_own_models import TappedModel\n"
            f"    model = {call}\n"
            f"and check the choice against layer_shapes(model, depth=2), every layer with its shape "
            f"(chapter 9).")


def check_stage(method: str, stage: int, *features) -> None:
    """Raise a clear error if ``stage`` (numbered from 1) is not a stage of every network."""
    count = min(len(f.stages) for f in features)
    if not 1 <= stage <= count:
        raise ValueError(f"{method}: stage {stage} does not exist; the networks have stages "
                         f"1..{count} (shapes {[tuple(s.shape[1:]) for s in features[0].stages]}).")


def output_terms(logits: Tensor, y: Tensor, teacher_logits: Tensor | None = None, ce_weight: float = 1.0,
                 kd_weight: float = 0.0, T: float = 4.0) -> dict[str, Tensor]:
    """The output-level terms a feature method may add to its own loss:
    ``{"ce": ce_weight·CE(logits, y), "kd": kd_weight·KD_T(logits, teacher_logits)}``,
    each left out when its weight is 0."""
    terms = {}
    if ce_weight:
        terms["ce"] = ce_weight * ce_loss(logits, y)
    if kd_weight:
        terms["kd"] = kd_weight * kd_loss(logits, teacher_logits, T)
    return terms
