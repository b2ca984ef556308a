"""The precision and device switches: selection, errors, float32 losses, determinism."""
import dataclasses

import pytest
import torch

from conftest import random_images
from hintlearn_mini import hardware, losses
from hintlearn_mini.methods import CRD, KD, AttentionTransfer
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES, fit_kwargs, get_profile
from hintlearn_mini.runs import cached_fit
from hintlearn_mini.train import fit, seed_everything


def test_auto_means_bf16_exactly_where_the_cpu_computes_it_natively(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(hardware, "native_bf16", lambda device="cpu": True)
        assert hardware.resolve_precision("auto") == "bf16"
        patch.setattr(hardware, "native_bf16", lambda device="cpu": False)
        assert hardware.resolve_precision("auto") == "fp32"
        assert hardware.resolve_precision() == "fp32"  # auto is the default
        assert hardware.resolve_precision("bf16") == "bf16"  # asked for explicitly: obeyed
    assert hardware.native_bf16("cpu") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_the_profile_carries_the_precision_into_fit(monkeypatch):
    monkeypatch.setenv("HINTLEARN_PRECISION", "fp32")
    profile = get_profile("laptop")
    assert profile.precision == "fp32" and fit_kwargs(profile)["precision"] == "fp32"
    assert "precision fp32" in profile.describe()
    monkeypatch.setenv("HINTLEARN_PRECISION", "bf16")
    assert fit_kwargs(get_profile("laptop"))["precision"] == "bf16"
    monkeypatch.delenv("HINTLEARN_PRECISION")
    profile = get_profile("laptop")
    assert profile.precision == "auto"
    assert fit_kwargs(profile)["precision"] == hardware.resolve_precision("auto")
    assert "(auto: " in profile.describe()


def test_an_unknown_precision_lists_the_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="'fp16'.*auto, fp32, bf16"):
        hardware.resolve_precision("fp16")
    monkeypatch.setenv("HINTLEARN_PRECISION", "half")
    with pytest.raises(ValueError, match="'half'.*auto, fp32, bf16"):
        get_profile("quick")
    with pytest.raises(ValueError, match="auto, fp32, bf16"):
        fit(build_model("resnet8"), random_images(16), None, epochs=1, progress=False)


def test_an_absent_device_names_the_devices_this_machine_has(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no cuda device.*it has: cpu"):
        hardware.resolve_device("cuda")
    with pytest.raises(ValueError, match="'tpu'.*cpu, cuda, mps"):
        hardware.resolve_device("tpu")
    monkeypatch.setenv("HINTLEARN_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="it has: cpu"):
        get_profile("laptop")
    monkeypatch.setenv("HINTLEARN_DEVICE", "cpu")
    assert get_profile("laptop").device == "cpu" and hardware.resolve_device() == "cpu"


def test_every_loss_computes_in_float32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 10, generator=g)
    teacher = torch.randn(8, 10, generator=g)
    fs, ft = torch.randn(8, 16, 8, 8, generator=g), torch.randn(8, 32, 8, 8, generator=g)
    low = [t.bfloat16() for t in (logits, teacher, fs, ft)]
    cases = {
        "kd_loss": lambda a, b, c, d: losses.kd_loss(a, b),
        "hint_loss": lambda a, b, c, d: losses.hint_loss(c, c.flip(0)),
        "at_loss": lambda a, b, c, d: losses.at_loss(c, d),
        "fsp_loss": lambda a, b, c, d: losses.fsp_loss([(c, c)], [(c.flip(0), c)]),
        "hcl_loss": lambda a, b, c, d: losses.hcl_loss([c], [c.flip(0)]),
        "ce_loss": lambda a, b, c, d: losses.ce_loss(a, torch.arange(8)),
    }
    for name, case in cases.items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = case(*low)
        reference = case(*(t.float() for t in low))  # the same numbers, no autocast, float32
        assert value.dtype == torch.float32, name
        assert torch.equal(value, reference), f"{name} is not computed in float32 under autocast"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert losses.fsp_matrix(low[2], low[3]).dtype == torch.float32
        assert losses.attention_map(low[2]).dtype == torch.float32


def test_bf16_training_keeps_weights_statistics_banks_and_optimiser_state_in_float32():
    data = random_images(32)
    seed_everything(0)
    crd = CRD(build_model("resnet8"), build_model("resnet8"), train_labels=data.labels, k=8)
    fit(crd, data, None, epochs=1, batch_size=16, precision="bf16", progress=False)
    for name, tensor in crd.state_dict().items():
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float32, name
    assert crd.memory.student_bank.dtype == torch.float32


def _run(precision, seed=0, make=lambda: KD(build_model("resnet8"), build_model("resnet8"))):
    seed_everything(seed)
    module = make()
    history = fit(module, random_images(48), random_images(24, seed=1), epochs=2, batch_size=16,
                  seed=seed, precision=precision, progress=False)
    numbers = [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]
    return module, numbers


def test_the_same_seed_gives_the_same_numbers_in_bf16():
    make = lambda: AttentionTransfer(build_model("resnet8"), build_model("resnet8"))
    a, first = _run("bf16", make=make)
    b, again = _run("bf16", make=make)
    assert first == again
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    _, fp32 = _run("fp32", make=make)
    assert fp32 != first  # bf16 really changed the arithmetic


def test_the_run_cache_keys_on_the_resolved_precision(capsys):
    data = random_images(32)
    tiny = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16)
    make = lambda: build_model("resnet8")
    _, fp32 = cached_fit(make, data, data, seed=0, profile=dataclasses.replace(tiny, precision="fp32"))
    _, bf16 = cached_fit(make, data, data, seed=0, profile=dataclasses.replace(tiny, precision="bf16"))
    assert not fp32.cached and not bf16.cached
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    auto = dataclasses.replace(tiny, precision="auto")
    _, again = cached_fit(make, data, data, seed=0, profile=auto)
    assert again.cached and again.precision == auto.resolved_precision()


def test_auto_asks_the_device_that_will_compute_not_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for cpu, gpu in ((False, True), (True, False)):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: cpu)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: gpu)
        assert hardware.native_bf16("cuda") is gpu and hardware.native_bf16("cuda:1") is gpu
        assert hardware.native_bf16("cpu") is cpu
        assert hardware.resolve_precision("auto", "cuda") == ("bf16" if gpu else "fp32")
        assert hardware.resolve_precision("auto", "cpu") == ("bf16" if cpu else "fp32")
        gpu_profile = dataclasses.replace(PROFILES["paper"], precision="auto", device="cuda")
        assert gpu_profile.resolved_precision() == ("bf16" if gpu else "fp32")


def test_fit_trains_where_hintlearn_device_says_and_checks_that_it_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, data = build_model("resnet8"), random_images(16)
    monkeypatch.setenv("HINTLEARN_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="'cuda' was asked for but this machine has no cuda device; it has: cpu"):
        fit(model, data, None, epochs=1, batch_size=16, progress=False)
    monkeypatch.setenv("HINTLEARN_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        fit(model, data, None, epochs=1, batch_size=16, progress=False)

    class Moved(Exception):
        pass

    def to(module, *args, **kwargs):  # where fit first moves the model, then stop
        raise Moved(*args)

    monkeypatch.setattr(hardware, "available_devices", lambda: ["cpu", "mps"])
    monkeypatch.setattr(torch.nn.Module, "to", to)
    monkeypatch.setenv("HINTLEARN_DEVICE", "mps")
    with pytest.raises(Moved) as moved:
        fit(model, data, None, epochs=1, batch_size=16, progress=False)
    assert moved.value.args == ("mps",)
