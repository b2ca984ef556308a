import dataclasses

import torch

from conftest import another_value, every_method, random_images
from hintlearn_mini.methods import KD
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES
from hintlearn_mini.data import cache_dir
from hintlearn_mini.runs import cached_fit

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16)


def test_identical_run_is_read_back_and_any_change_trains_again(capsys):
    data = random_images(32)
    torch.manual_seed(100)
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
    torch.manual_seed(200)
    other_teacher = build_model("resnet8")  # same architecture, other weights
    assert not cached_fit(lambda: KD(build_model("resnet8"), other_teacher, T=4.0), data, data,
                          seed=0, profile=TINY)[1].cached
    assert not cached_fit(make, data, data, seed=0, profile=dataclasses.replace(TINY, lr=0.01))[1].cached


def test_other_images_of_the_same_size_train_again():
    teacher = build_model("resnet8")
    make = lambda: KD(build_model("resnet8"), teacher)
    a, b = random_images(32, seed=0), random_images(32, seed=1)
    assert a.fingerprint() != b.fingerprint() and len(a) == len(b)
    assert not cached_fit(make, a, a, seed=0, profile=TINY)[1].cached
    assert not cached_fit(make, b, a, seed=0, profile=TINY)[1].cached  # other training images
    assert not cached_fit(make, a, b, seed=0, profile=TINY)[1].cached  # other test images
    assert cached_fit(make, random_images(32, seed=0), a, seed=0, profile=TINY)[1].cached  # same content


def test_a_cached_weights_file_that_fails_its_sha256_is_discarded_and_retrained(capsys):
    data = random_images(32)
    make = lambda: build_model("resnet8")
    _, first = cached_fit(make, data, data, seed=0, profile=TINY)
    weights = next((cache_dir() / "runs").glob("*.pt"))
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte inside the weights: the file still loads
    weights.write_bytes(bytes(blob))
    _, again = cached_fit(make, data, data, seed=0, profile=TINY)
    assert not again.cached and "unusable" in capsys.readouterr().out
    assert [r["test_acc"] for r in again.epochs] == [r["test_acc"] for r in first.epochs]
    assert cached_fit(make, data, data, seed=0, profile=TINY)[1].cached  # stored anew


def test_a_cut_run_record_is_discarded_and_retrained_with_one_line(capsys):
    data = random_images(32)
    make = lambda: build_model("resnet8")
    _, first = cached_fit(make, data, data, seed=0, profile=TINY)
    record = next((cache_dir() / "runs").glob("*.json"))
    record.write_text(record.read_text()[:40])  # a killed run, a full disk
    _, again = cached_fit(make, data, data, seed=0, profile=TINY)
    said = capsys.readouterr().out
    assert not again.cached and f"{record} (or its weights) is unusable (JSONDecodeError" in said
    assert "deleting both and training again" in said
    assert [r["test_acc"] for r in again.epochs] == [r["test_acc"] for r in first.epochs]
    assert cached_fit(make, data, data, seed=0, profile=TINY)[1].cached


def test_every_keyword_of_every_method_is_in_the_run_key():
    import inspect

    from hintlearn_mini.runs import run_key
    from hintlearn_mini.train import seed_everything

    data = random_images(32)
    required = {"train_labels": data.labels}  # CRD's, without a default

    def key(method, arguments):
        seed_everything(0)  # the same initial weights (and CRD's drawn seed) every time
        module = method(build_model("resnet8"), build_model("resnet8"), **arguments)
        return module, run_key(module, 0, TINY, data, data)

    methods = every_method()
    assert len(methods) >= 6
    for method in methods:
        parameters = list(inspect.signature(method.__init__).parameters.values())[3:]  # self, student, teacher
        base = {p.name: required[p.name] if p.default is inspect.Parameter.empty else p.default
                for p in parameters}
        module, base_key = key(method, {n: v for n, v in base.items() if n in required})
        assert list(module.arguments) == [p.name for p in parameters], method.__name__
        assert key(method, base)[1] == base_key, f"{method.__name__}: the same arguments, another key"
        for name, value in base.items():
            changed = key(method, dict(base, **{name: another_value(value)}))[1]
            assert changed != base_key, f"{method.__name__}({name}=...) changed, the run key did not"


def test_the_thread_count_is_in_the_run_key():
    from hintlearn_mini.runs import run_key

    data, threads = random_images(32), torch.get_num_threads()
    module = build_model("resnet8")
    try:
        torch.set_num_threads(1)
        one = run_key(module, 0, TINY, data, data)
        torch.set_num_threads(2)
        two = run_key(module, 0, TINY, data, data)
    finally:
        torch.set_num_threads(threads)
    assert one != two


def test_the_validation_set_is_in_the_run_key_only_when_a_run_has_one():
    from hintlearn_mini.runs import run_key

    data, module = random_images(32), build_model("resnet8")
    plain = run_key(module, 0, TINY, data, data)
    assert run_key(module, 0, TINY, data, data, None) == plain  # the runs cached before stay valid
    one, other = random_images(20, seed=1), random_images(20, seed=2)
    assert len({plain, run_key(module, 0, TINY, data, data, one), run_key(module, 0, TINY, data, data, other)}) == 3
