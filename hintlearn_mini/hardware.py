"""Where and in what precision the book computes: one switch each.

* ``HINTLEARN_DEVICE`` = ``cpu`` (default) | ``cuda`` | ``mps``: where networks train.
  The book's stored outputs come from a CPU; a reader with a GPU or an Apple laptop
  can use it. A device this machine does not have is an error naming those it has.
* ``HINTLEARN_PRECISION`` = ``auto`` (default) | ``fp32`` | ``bf16``: the arithmetic of
  the networks' forward and backward passes. ``bf16`` runs them under
  ``torch.autocast(dtype=torch.bfloat16)``: convolutions and matrix products in
  bfloat16 (8 bits of mantissa), everything else in float32. ``auto`` picks ``bf16``
  only where the device computes it natively (a CPU with AVX-512 BF16 / AMX, a CUDA GPU
  that supports it): on a CPU without it the same autocast is *slower* than float32.

What stays float32 under bf16, always: the weights, their gradients and the optimiser
state (autocast casts copies, never the parameters), BatchNorm's running statistics,
CRD's memory banks, and every loss term: :func:`float32_loss` wraps the functions of
:mod:`hintlearn_mini.losses` so that softmax, squared errors, Gram matrices and NCE
scores are computed from float32 copies of their inputs, with autocast off.

Chapter: ``book/01_teacher_and_student.ipynb`` (section "Training at the speed of the
hardware").
"""
from __future__ import annotations

import contextlib
import functools
import os

import torch
from torch import Tensor

__all__ = ["PRECISIONS", "DEVICES", "available_devices", "resolve_device", "resolve_precision",
           "native_bf16", "autocast", "float32_loss"]

PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """The devices of :data:`DEVICES` that this machine has, ``cpu`` first."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def resolve_device(name: str | None = None, default: str = "cpu") -> str:
    """``name``, else ``$HINTLEARN_DEVICE``, else ``default``; checked to exist here.

    ``cuda:1`` style names are accepted for CUDA. Raises ``ValueError`` naming the
    valid names, or ``RuntimeError`` naming the devices this machine has.
    """
    name = name or os.environ.get("HINTLEARN_DEVICE") or default
    kind = name.split(":")[0]
    if kind not in DEVICES:
        raise ValueError(f"unknown device {name!r}; valid devices: {', '.join(DEVICES)} "
                         f"(set HINTLEARN_DEVICE or pass device=)")
    if kind not in available_devices():
        raise RuntimeError(f"device {name!r} was asked for but this machine has no {kind} device; "
                           f"it has: {', '.join(available_devices())}. Set HINTLEARN_DEVICE to one of "
                           f"them (or unset it: the default is cpu).")
    return name


def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 convolutions and products natively."""
    kind = device.split(":")[0]
    if kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return False  # mps: autocast to bf16 is not what Apple's GPUs are fast at


def resolve_precision(name: str | None = None, device: str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"``: ``name``, else ``$HINTLEARN_PRECISION``, else ``"auto"``,
    with ``auto`` decided by :func:`native_bf16` on ``device``."""
    name = name or os.environ.get("HINTLEARN_PRECISION") or "auto"
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; valid precisions: {', '.join(PRECISIONS)} "
                         f"(set HINTLEARN_PRECISION or pass precision=)")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def autocast(precision: str, device: str = "cpu"):
    """The context in which a training step's forward pass runs: bf16 autocast on
    ``device`` for ``"bf16"``, nothing for ``"fp32"``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.split(":")[0], dtype=torch.bfloat16)
    raise ValueError(f"unknown precision {precision!r}; resolve it first: valid are 'fp32', 'bf16'")


def _to_float32(value, cast: dict):
    if isinstance(value, Tensor) and value.is_floating_point():
        if id(value) not in cast:
            cast[id(value)] = value.float()
        return cast[id(value)]
    if isinstance(value, (list, tuple)):
        return type(value)(_to_float32(v, cast) for v in value)
    return value


def float32_loss(loss_fn=None, *, cast_inputs: bool = True):
    """Decorator: run ``loss_fn`` in float32 whatever the surrounding autocast.

    Floating-point tensor arguments (and lists or tuples of them) are cast to float32,
    each distinct tensor once, and autocast is switched off inside, so a loss never
    takes a softmax, a square or a Gram matrix of bfloat16 numbers. Gradients flow
    back through the casts. ``@float32_loss(cast_inputs=False)`` only switches
    autocast off: for a loss that accumulates its low-precision inputs in float32
    itself (``attention_map``'s channel reduction) without a float32 copy of them.
    """
    if loss_fn is None:
        return functools.partial(float32_loss, cast_inputs=cast_inputs)

    @functools.wraps(loss_fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for kind in ("cpu", "cuda", "mps"):
                if torch.is_autocast_enabled(kind):
                    stack.enter_context(torch.autocast(kind, enabled=False))
            if not cast_inputs:
                return loss_fn(*args, **kwargs)
            cast = {}  # id -> float32 copy: a tensor passed twice is cast once
            return loss_fn(*_to_float32(args, cast), **{k: _to_float32(v, cast) for k, v in kwargs.items()})
    return wrapper
