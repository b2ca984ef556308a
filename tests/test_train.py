import math

import pytest
import torch

from conftest import random_images
from hintlearn_mini.methods import KD, Distiller
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES, get_profile
from hintlearn_mini.train import (CheckpointMismatchError, NonFiniteLossError, evaluate, fit, operator_times,
                                  seed_everything, step_time)


def _run(seed, module_fn=lambda: build_model("resnet8"), **kw):
    seed_everything(seed)
    module = module_fn()
    data = random_images(48)
    history = fit(module, data, data, epochs=2, batch_size=16, lr=0.05, seed=seed, progress=False, **kw)
    return module, history


def _numbers(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]


def test_same_seed_same_numbers():
    _, a = _run(3)
    _, b = _run(3)
    _, c = _run(4)
    assert _numbers(a) == _numbers(b)
    assert _numbers(a) != _numbers(c)


def test_history_has_losses_accuracy_and_time_per_epoch():
    _, history = _run(0)
    assert [row["epoch"] for row in history.epochs] == [1, 2]
    for row in history.epochs:
        assert {"ce", "loss", "train_acc", "test_acc", "seconds"} <= set(row)
        assert row["seconds"] > 0
    assert history.final_accuracy == history.epochs[-1]["test_acc"]


def test_training_learns_something():
    data = random_images(200)
    seed_everything(0)
    model = build_model("resnet8")
    before = evaluate(model, data)
    fit(model, data, None, epochs=4, batch_size=25, lr=0.05, progress=False)
    assert evaluate(model, data) > max(before, 30.0)


class Exploding(Distiller):
    def forward(self, x, y, index=None):
        logits = self.student(x)
        bad = torch.tensor(float("nan")) if self.training and self.steps >= 2 else torch.tensor(0.0)
        self.steps += 1
        return logits, {"ce": torch.nn.functional.cross_entropy(logits, y), "hint": bad}


def test_nan_loss_stops_at_once_naming_epoch_step_and_term():
    def make():
        d = Exploding(build_model("resnet8"), build_model("resnet8"))
        d.steps = 0
        return d
    with pytest.raises(NonFiniteLossError, match=r"'hint' is nan at epoch 1, step 3"):
        _run(0, make)


def test_distiller_keeps_teacher_frozen_in_eval_and_out_of_the_optimizer():
    torch.manual_seed(0)
    teacher = build_model("resnet8").train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller = KD(build_model("resnet8"), teacher)
    distiller.train()
    assert not teacher.training and distiller.student.training
    assert all(not p.requires_grad for p in teacher.parameters())
    data = random_images(32)
    fit(distiller, data, None, epochs=1, batch_size=16, progress=False)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"teacher changed: {key}"
    assert all(p.grad is None for p in teacher.parameters())
    assert not teacher.training


def test_kd_distiller_returns_logits_and_named_losses():
    distiller = KD(build_model("resnet8"), build_model("resnet8"), T=4, ce_weight=0.1, kd_weight=0.9)
    logits, losses = distiller(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    assert logits.shape == (4, 10) and set(losses) == {"ce", "kd"}
    sum(losses.values()).backward()
    assert distiller.student.fc.weight.grad is not None


def test_unknown_profile_lists_valid_names(monkeypatch):
    with pytest.raises(ValueError, match="quick, laptop, paper"):
        get_profile("fast")
    monkeypatch.setenv("HINTLEARN_PROFILE", "quik")
    with pytest.raises(ValueError, match="'quik'"):
        get_profile()
    monkeypatch.setenv("HINTLEARN_PROFILE", "quick")
    assert get_profile() == PROFILES["quick"]
    monkeypatch.delenv("HINTLEARN_PROFILE")
    assert get_profile().name == "laptop"


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="'onecycle', 'step'"):
        _run(0, schedule="cosine")


def test_step_time_trains_the_module_and_skips_short_batches():
    model = build_model("resnet8")
    before = [p.detach().clone() for p in model.parameters()]
    ms = step_time(model, random_images(40), batch_size=16, steps=3, warmup=1)  # 40 = 2 full batches + 8
    assert ms > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_operator_times_add_up_to_a_step_and_name_the_convolutions():
    data = random_images(32)
    ops = operator_times(KD(build_model("resnet8"), build_model("resnet8")), data, batch_size=16, steps=2, warmup=1)
    assert list(ops.values()) == sorted(ops.values(), reverse=True)
    assert {"aten::convolution_backward", "aten::mkldnn_convolution"} & set(ops)
    assert not {"aten::flip", "aten::randint", "aten::constant_pad_nd"} & set(ops)  # augmentation is outside
    step_ms = step_time(KD(build_model("resnet8"), build_model("resnet8")), data, batch_size=16, steps=3, warmup=1)
    assert 0.2 * step_ms < sum(ops.values()) < 5 * step_ms


class _Killed(Exception):
    pass


def _kill_after(epoch: int):
    def callback(done: int, module) -> None:
        if done == epoch:
            raise _Killed
    return callback


def test_a_killed_run_goes_on_from_its_checkpoint_to_the_numbers_of_an_uninterrupted_one(tmp_path):
    data, test = random_images(48), random_images(16, seed=1)
    kwargs = dict(epochs=3, batch_size=16, seed=4, progress=False, lr=0.05)
    seed_everything(0)
    whole = build_model("resnet8")
    straight = fit(whole, data, test, **kwargs)
    seed_everything(0)
    killed = build_model("resnet8")
    checkpoint = tmp_path / "teacher.ckpt"
    with pytest.raises(_Killed):
        fit(killed, data, test, checkpoint=checkpoint, epoch_callback=_kill_after(2), **kwargs)
    seed_everything(1)  # a fresh process: other initial weights, overwritten by the checkpoint
    resumed_model = build_model("resnet8")
    resumed = fit(resumed_model, data, test, checkpoint=checkpoint, **kwargs)
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(resumed.epochs) == drop(straight.epochs) and len(resumed.epochs) == 3
    for (name, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    again = fit(resumed_model, data, test, checkpoint=checkpoint, **kwargs)  # finished: nothing to train
    assert drop(again.epochs) == drop(straight.epochs)


def test_a_checkpoint_of_other_settings_is_refused_with_the_file_to_delete(tmp_path):
    data = random_images(32)
    checkpoint = tmp_path / "teacher.ckpt"
    fit(build_model("resnet8"), data, epochs=1, batch_size=16, progress=False, checkpoint=checkpoint)
    with pytest.raises(CheckpointMismatchError, match=r"other settings .*'lr': \(0\.05, 0\.1\).*delete .*teacher\.ckpt"):
        fit(build_model("resnet8"), data, epochs=1, batch_size=16, lr=0.1, progress=False, checkpoint=checkpoint)
    with pytest.raises(CheckpointMismatchError, match="'data'"):
        fit(build_model("resnet8"), random_images(32, seed=5), epochs=1, batch_size=16, progress=False,
            checkpoint=checkpoint)
    with pytest.raises(ValueError, match="distiller's run is cached whole"):
        fit(KD(build_model("resnet8"), build_model("resnet8")), data, epochs=1, progress=False,
            checkpoint=checkpoint)


def test_the_validation_set_is_evaluated_whenever_the_test_set_is():
    data, test, validation = random_images(32), random_images(16, seed=1), random_images(20, seed=2)
    seed_everything(0)
    model = build_model("resnet8")
    history = fit(model, data, test, epochs=2, batch_size=16, progress=False, eval_every=None,
                  validation_set=validation)
    assert math.isnan(history.epochs[0]["val_acc"]) and math.isnan(history.epochs[0]["test_acc"])
    assert history.final_validation_accuracy == evaluate(model, validation) != evaluate(model, test)
    assert math.isnan(fit(model, data, test, epochs=1, batch_size=16, progress=False).final_validation_accuracy)


DDP_WORKER = """
import sys, torch, torch.distributed as dist
sys.path.insert(0, {tests!r})
from conftest import random_images
from test_train import _small_classifier
from hintlearn_mini.train import fit, seed_everything
rank, folder = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=f"file://{{folder}}/rendezvous", rank=rank, world_size=2)
torch.set_num_threads(1)
seed_everything(0)
model = _small_classifier()
history = fit(model, random_images(48), random_images(16, seed=1), epochs=2, batch_size=16, seed=3,
              precision="fp32", progress=False)
torch.save({{"weights": model.state_dict(), "test_acc": history.final_accuracy,
            "losses": history.column("loss")}}, f"{{folder}}/model{{rank}}.pt")
dist.barrier()  # leave together: an early exit can cut the other's last message
dist.destroy_process_group()
"""


def _small_classifier():
    """A network without BatchNorm: its gradient over a global batch is the mean of its
    shards' gradients (BatchNorm's batch statistics would differ per shard, and a CPU
    cannot synchronise them)."""
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))


def test_two_processes_train_as_one_process_with_the_same_global_batch(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    code = DDP_WORKER.format(tests=str(Path(__file__).parent))
    workers = [subprocess.Popen([sys.executable, "-c", code, str(rank), str(tmp_path)]) for rank in (0, 1)]
    assert [w.wait(timeout=180) for w in workers] == [0, 0]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        seed_everything(0)
        one = _small_classifier()
        history = fit(one, random_images(48), random_images(16, seed=1), epochs=2, batch_size=16, seed=3,
                      precision="fp32", progress=False)
    finally:
        torch.set_num_threads(threads)
    ranks = [torch.load(tmp_path / f"model{rank}.pt") for rank in (0, 1)]
    for name, reference in one.state_dict().items():
        assert torch.equal(ranks[0]["weights"][name], ranks[1]["weights"][name]), f"{name} differs between processes"
        gap = (ranks[0]["weights"][name] - reference).abs().max().item()  # 2e-6 measured: the sums' order
        assert gap < 1e-5, f"{name}: two processes of 8 images are not one process of 16 (differ by {gap:.2e})"
    assert ranks[0]["test_acc"] == ranks[1]["test_acc"] == history.final_accuracy  # the whole test set, each
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each trained on its own share of the batches
