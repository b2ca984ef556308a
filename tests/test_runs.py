import dataclasses

import torch

from conftest import random_images
from hintlearn_mini.methods import KD
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES
from hintlearn_mini.runs import cached_fit

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16)


def test_identical_run_is_read_back_and_any_change_trains_again(capsys):
    data = random_images(32)
    teacher = build_model("resnet8")
    make = lambda: KD(build_model("resnet8"), teacher, T=4.0)
    trained, first = cached_fit(make, data, data, seed=0, profile=TINY)
    loaded, again = cached_fit(make, data, data, seed=0, profile=TINY)
    assert not first.cached and again.cached
    assert again.epochs == first.epochs
    for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    assert "read from the run cache" in capsys.readouterr().out
    assert not cached_fit(make, data, data, seed=1, profile=TINY)[1].cached
    assert not cached_fit(lambda: KD(build_model("resnet8"), teacher, T=2.0), data, data,
                          seed=0, profile=TINY)[1].cached
    other_teacher = build_model("resnet8")  # same architecture, other weights
    assert not cached_fit(lambda: KD(build_model("resnet8"), other_teacher, T=4.0), data, data,
                          seed=0, profile=TINY)[1].cached
    assert not cached_fit(make, data, data, seed=0, profile=dataclasses.replace(TINY, lr=0.01))[1].cached
