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

import torch
from torch import Tensor, nn

__all__ = ["Distiller", "freeze"]


def freeze(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and stop gradients into its parameters."""
    model.eval()
    model.requires_grad_(False)
    return model


class Distiller(nn.Module):
    """Base class: ``Distiller(student, teacher)``; subclasses implement ``forward``."""

    def __init__(self, student: nn.Module, teacher: nn.Module):
        super().__init__()
        self.student = student
        self.teacher = freeze(teacher)

    def train(self, mode: bool = True) -> "Distiller":
        super().train(mode)
        self.teacher.eval()  # whatever mode the distiller is in, the teacher is frozen
        return self

    def teacher_forward(self, x: Tensor, features: bool = False):
        """The teacher's logits (and features) without building a graph."""
        with torch.no_grad():
            return self.teacher(x, features=features)

    def extra_parameters(self) -> list[nn.Parameter]:
        """The method's own trainable parameters (neither student nor teacher)."""
        mine = {id(p) for p in self.student.parameters()} | {id(p) for p in self.teacher.parameters()}
        return [p for p in self.parameters() if id(p) not in mine]

    def forward(self, x: Tensor, y: Tensor, index: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, y, index)")
