"""The check of chapter 3, ``book/03_fitnets.ipynb``: FitNets' regressor (Romero et al.
2015, "FitNets: hints for thin deep nets", §2.2), as RepDistiller's ``ConvReg``
(Tian et al. 2020), the package's ``methods.fitnets.ConvRegressor``."""
from __future__ import annotations

import torch
from torch import nn

from ..methods.fitnets import ConvRegressor
from ._checking import Wrong, call, check

__all__ = ["check_hint_regressor"]

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _regressor_layers(module) -> list:
    """The convolutions, BatchNorms and ReLUs of a module, in the order they were added."""
    kinds = (*_CONVS, nn.BatchNorm2d, nn.ReLU)
    return [m for m in module.modules() if isinstance(m, kinds)]


def _conv_text(conv) -> str:
    return (f"{type(conv).__name__} kernel {tuple(conv.kernel_size)}, stride {tuple(conv.stride)}, "
            f"padding {tuple(conv.padding)}")


def _out_size(conv, h: int) -> int:
    """The output height of a convolution on a map h high: ⌊(h + 2p − k)/s⌋ + 1, or
    (h − 1)·s − 2p + k for a transposed one."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    if isinstance(conv, nn.ConvTranspose2d):
        return (h - 1) * s - 2 * p + k
    return (h + 2 * p - k) // s + 1


def _regressor_mistake(layers, reference, shapes: str, height: int) -> str | None:
    """What differs between the learner's layers and ConvReg's, or None."""
    names = [type(m).__name__ for m in layers]
    if not layers or not isinstance(layers[0], _CONVS):
        return f"{shapes}: start with a Conv2d or ConvTranspose2d; your layers are {names}"
    conv, ref = layers[0], reference[0]
    if type(conv) is not type(ref) or (conv.kernel_size, conv.stride, conv.padding) != (
            ref.kernel_size, ref.stride, ref.padding):
        return (f"{shapes}: ConvReg uses a {_conv_text(ref)}; yours is a {_conv_text(conv)}, "
                f"whose output is {_out_size(conv, height)} high where the hint is {_out_size(ref, height)}")
    if (conv.in_channels, conv.out_channels) != (ref.in_channels, ref.out_channels):
        return (f"{shapes}: the convolution maps {conv.in_channels} to {conv.out_channels} channels; "
                f"it must map C_s = {ref.in_channels} to C_t = {ref.out_channels}")
    if conv.bias is None:
        return f"{shapes}: ConvReg's convolution keeps its bias (the default bias=True)"
    if names[1:] != ["BatchNorm2d", "ReLU"]:
        return (f"{shapes}: after the convolution come BatchNorm2d(C_t) and ReLU (ConvReg's use_relu=True, "
                f"as the hint is taken after a ReLU); your layers are {names}")
    return None


def _same_output(module, reference, student_shape) -> bool:
    """Whether the learner's regressor, given ConvReg's weights, computes ConvReg's output."""
    for mine, ref in zip(_regressor_layers(module), _regressor_layers(reference)):
        mine.load_state_dict(ref.state_dict())
    x = torch.randn(2, *student_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.allclose(module.train()(x), reference.train()(x), atol=1e-5)


def _check_refuses(fn, student_shape, teacher_shape) -> None:
    """Raise :class:`Wrong` unless ``fn`` raises a ValueError for shapes no ConvReg maps."""
    shapes = f"{student_shape} -> {teacher_shape}"
    try:
        fn(student_shape, teacher_shape)
    except ValueError:
        return
    except Exception as error:
        raise Wrong(f"{shapes}: raise a ValueError naming both shapes; you raised "
                    f"{type(error).__name__}: {error}") from None
    raise Wrong(f"{shapes}: no ConvReg maps a guided layer smaller than the hint (other than "
                "half its size); raise a ValueError that names both shapes")


@check
def check_hint_regressor(fn):
    """Exercise ``ex-regressor``: ``fn(student_shape, teacher_shape)`` -> FitNets' regressor
    as RepDistiller's ConvReg (Tian et al. 2020; Romero et al. 2015 use a convolution whose
    kernel lands on the hint's size), from (C_s, H_s, W_s) to (C_t, H_t, W_t):

    * H_s = 2·H_t: Conv2d 3×3, stride 2, padding 1   (out = ⌊(H_s + 2 − 3)/2⌋ + 1 = H_t);
    * 2·H_s = H_t: ConvTranspose2d 4×4, stride 2, padding 1   (out = 2(H_s − 1) − 2 + 4);
    * H_s ≥ H_t and W_s ≥ W_t: Conv2d of kernel (1 + H_s − H_t) × (1 + W_s − W_t);
    * otherwise a ValueError;

    each convolution with its bias, then BatchNorm2d(C_t) and ReLU."""
    cases = [((16, 16, 16), (32, 16, 16)), ((16, 32, 32), (32, 16, 16)), ((16, 8, 8), (32, 16, 16)),
             ((8, 10, 12), (64, 8, 8))]
    for student_shape, teacher_shape in cases:
        shapes = f"{student_shape} -> {teacher_shape}"
        module = call(fn, student_shape, teacher_shape)
        if isinstance(module, ConvRegressor):
            raise Wrong("that is the package's ConvRegressor: build yours from nn layers")
        if not isinstance(module, nn.Module):
            raise Wrong(f"return an nn.Module; got {type(module).__name__}")
        reference = ConvRegressor(student_shape, teacher_shape)
        mistake = _regressor_mistake(_regressor_layers(module), _regressor_layers(reference), shapes,
                                     student_shape[1])
        if mistake is None and not _same_output(module, reference, student_shape):
            mistake = f"{shapes}: with ConvReg's weights your module computes another output: conv, BN, ReLU in turn"
        if mistake is not None:
            raise Wrong(mistake)
    _check_refuses(fn, (16, 4, 4), (32, 7, 7))
    return "ConvReg for equal, double, half and larger odd-sized guided layers, and a ValueError where none exists."
