"""What every exported method must do in a real training step: under ``bf16`` its
forward passes run in bfloat16 and its loss terms in float32; each of its keywords
changes what ``forward`` computes.

A new method joins these tests by being exported from ``hintlearn_mini.methods``.
"""
import inspect
import sys

import pytest
import torch
from torch import nn

from conftest import another_value, every_method, random_images
from hintlearn_mini import hardware, losses, methods
from hintlearn_mini.methods.crd import ContrastMemory
from hintlearn_mini.models import build_model
from hintlearn_mini.train import fit, seed_everything

DATA = random_images(16)
# (method, keywords that choose a code path, keywords that path does not use): CRD's
# in_batch switches from the memory bank to in-batch InfoNCE, which draws no negatives
VARIANTS = [(m, {}, ()) for m in every_method()] + [
    (methods.CRD, {"in_batch": True}, ("k", "momentum", "seed", "train_labels"))]
IDS = [m.__name__ + "".join(f"-{k}" for k in v) for m, v, _ in VARIANTS]
COMPUTING_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def _build(method, arguments: dict):
    seed_everything(0)  # the same weights (and CRD's drawn seed) for every build
    if method is methods.CRD:  # its labels, and K below the 14 images outside a class
        arguments = {"train_labels": DATA.labels, "k": 4, **arguments}
    return method(build_model("resnet8"), build_model("resnet8"), **arguments)


def _float32_copy(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().float()
    if isinstance(value, (list, tuple)):
        return type(value)(_float32_copy(v) for v in value)
    return value


def _record_loss_calls(monkeypatch) -> list:
    """Wrap each function of ``losses`` where a method's module calls it; every call
    is recorded as (function, args, kwargs, result)."""
    calls = []

    def recorder(fn):
        def recorded(*args, **kwargs):
            result = fn(*args, **kwargs)
            calls.append((fn, args, kwargs, result))
            return result
        return recorded

    modules = {sys.modules[m.__module__] for m in [*every_method(), methods.Distiller]}
    for module in modules:
        for name, value in list(vars(module).items()):
            if callable(value) and getattr(losses, name, None) is value:
                monkeypatch.setattr(module, name, recorder(value))
    return calls


def _record_output_dtypes(module: nn.Module, dtypes: dict) -> None:
    """``dtypes[layer name]``: the dtypes of each convolution's or linear layer's outputs."""
    for name, layer in module.named_modules():
        if isinstance(layer, COMPUTING_LAYERS):
            layer.register_forward_hook(
                lambda _, __, out, name=name: dtypes.setdefault(name, set()).add(out.dtype))
    for name, layer in module.named_modules():
        if isinstance(layer, ContrastMemory):  # its scores: float32 whatever the autocast
            layer.register_forward_hook(
                lambda _, __, out, name=name: dtypes.setdefault(name, set()).update(o.dtype for o in out))


@pytest.mark.parametrize("device", hardware.available_devices())
@pytest.mark.parametrize("method, variant, unused", VARIANTS, ids=IDS)
def test_a_bf16_step_runs_the_networks_in_bfloat16_and_every_loss_in_float32(method, variant, unused,
                                                                             device, monkeypatch):
    distiller = _build(method, variant)
    dtypes, calls = {}, _record_loss_calls(monkeypatch)
    _record_output_dtypes(distiller, dtypes)
    history = fit(distiller, DATA, None, epochs=1, batch_size=16, precision="bf16", device=device,
                  progress=False, eval_every=None)
    assert history.precision == "bf16" and calls, "one real step, its losses recorded"
    layers = {name: d for name, d in dtypes.items() if "memory" not in name}
    assert any(n.startswith("teacher.") for n in layers) and any(n.startswith("student.") for n in layers)
    not_bf16 = {name: d for name, d in layers.items() if d != {torch.bfloat16}}
    assert not not_bf16, f"{method.__name__}: forward passes not in bfloat16: {not_bf16}"
    memory = {name: d for name, d in dtypes.items() if "memory" in name}
    assert all(d == {torch.float32} for d in memory.values()), f"CRD's scores not float32: {memory}"
    for fn, args, kwargs, result in calls:  # the same call, in float32 without autocast
        assert result.dtype == torch.float32, f"{fn.__name__} returned {result.dtype}"
        with torch.no_grad():
            reference = fn(*_float32_copy(args), **_float32_copy(kwargs))
        assert torch.equal(result.detach(), reference), \
            f"{method.__name__}: {fn.__name__} under bf16 autocast is not its float32 computation"


def _base_arguments(method, variant: dict) -> dict:
    """Every keyword at its default, except: weights of 0 turned on (so that the
    keywords they gate, such as T, act), CRD's labels and K as :func:`_build` has them."""
    parameters = list(inspect.signature(method.__init__).parameters.values())[3:]  # self, student, teacher
    base = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    base = {name: 0.5 if value == 0.0 and isinstance(value, float) else value for name, value in base.items()}
    if method is methods.CRD:
        base.update(train_labels=DATA.labels, k=4)
    assert {p.name for p in parameters} == set(base), f"{method.__name__}: a keyword without a value here"
    return dict(base, **variant)


def _two_steps(distiller) -> list[dict]:
    """The loss terms of two calls of ``forward`` on the same batch, a tenth of the way
    into training (the second call sees the first's updates of CRD's banks)."""
    distiller.set_progress(0.01)
    x, y, index = DATA.images[:8].float() / 255, DATA.labels[:8], torch.arange(8)
    terms = []
    for _ in range(2):
        _, loss_terms = distiller(x, y, index)
        terms.append({name: value.detach() for name, value in loss_terms.items()})
    return terms


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


@pytest.mark.parametrize("method, variant, unused", VARIANTS, ids=IDS)
def test_every_keyword_changes_what_forward_computes(method, variant, unused):
    base = _base_arguments(method, variant)
    reference = _two_steps(_build(method, base))
    assert _same(_two_steps(_build(method, base)), reference), "the same arguments, the same losses"
    for name, value in base.items():
        if name in variant or name in unused:
            continue
        changed = _two_steps(_build(method, dict(base, **{name: another_value(value)})))
        assert not _same(changed, reference), \
            f"{method.__name__}({name}={another_value(value)!r}) computes the losses of {name}={value!r}"
