"""Several processes train one run as one process would (issue 30: torchrun, DDP, gloo).

Every method of the benchmark is trained by two ``gloo`` processes sharing each global
batch and by one process taking it whole; the trained weights must agree. BatchNorm is
the one layer whose numbers depend on the share a process sees (its batch statistics;
SyncBatchNorm needs GPUs), so these runs normalise each image on its own instead
(GroupNorm with one group): what is left to differ is the order of the sums. The benchmark itself is run under ``torchrun``, killed
part-way and resumed.
"""
import csv
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hintlearn_mini import bench
from hintlearn_mini.bench import METHODS, read_results
from hintlearn_mini.distributed import _replace_layers, _to_plain, _to_sync, my_shard, synchronised_batchnorm
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES

TWO_PROCESSES = dataclasses.replace(PROFILES["quick"], epochs=1, init_epochs=1, batch_size=16, lr=0.01,
                                    precision="fp32", seeds=(0,))

WORKER = """
import sys, torch, torch.distributed as dist
rank, count, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


class ImageNorm(torch.nn.GroupNorm):  # statistics per image: the same whatever share a
    def __init__(self, channels, *args, **kwargs):  # process sees (BatchNorm's are per batch)
        super().__init__(1, channels)


torch.nn.BatchNorm2d = ImageNorm


sys.path.insert(0, {tests!r})
from conftest import random_images
from test_distributed import TWO_PROCESSES
from hintlearn_mini import runs, train
from hintlearn_mini.bench import METHODS, recipes
from hintlearn_mini.models import build_model

if count > 1:
    dist.init_process_group("gloo", init_method=f"file://{{folder}}/rendezvous", rank=rank, world_size=count)
torch.set_num_threads(1)
trained = []  # the weights after every fit: stage 1 and the run of a two-stage method
left_out = {{}}  # what DistributedDataParallel was told to leave alone, per module trained


def recording_fit(module, *args, **kwargs):
    history = real_fit(module, *args, **kwargs)
    trained.append({{name: t.detach().clone() for name, t in module.state_dict().items()}})
    left_out[type(module).__name__] = getattr(module, "_ddp_params_and_buffers_to_ignore", None)
    return history


real_fit, recipes.fit, runs.fit = train.fit, recording_fit, recording_fit
torch.manual_seed(0)
teacher = build_model("resnet8").eval()
train_set, test_set = random_images(48), random_images(16, seed=1)
weights, accuracies = {{}}, {{}}
for recipe in METHODS:
    trained.clear()
    history, _ = recipes.train_recipe(recipe, TWO_PROCESSES, teacher, train_set, test_set, seed=3)
    weights[recipe.name], accuracies[recipe.name] = list(trained), history.final_accuracy
torch.save({{"weights": weights, "accuracies": accuracies, "left_out": left_out}},
           f"{{folder}}/{{count}}-{{rank}}.pt")
if count > 1:
    dist.barrier()  # leave together: an early exit can cut the other's last message
    dist.destroy_process_group()
"""


@pytest.fixture(scope="module")
def trained_by_two_and_by_one(tmp_path_factory):
    """Every method trained by two processes (ranks 0 and 1) and by one process."""
    folder = tmp_path_factory.mktemp("processes")
    code = WORKER.format(tests=str(Path(__file__).parent))
    environment = dict(os.environ, HINTLEARN_CACHE=str(folder / "cache"), HINTLEARN_DOWNLOAD="0")
    environment.pop("HINTLEARN_PRECISION", None)
    workers = [subprocess.Popen([sys.executable, "-c", code, str(rank), str(count), str(folder)], env=environment)
               for rank, count in ((0, 2), (1, 2), (0, 1))]
    assert [w.wait(timeout=600) for w in workers] == [0, 0, 0]
    return [torch.load(folder / f"{name}.pt") for name in ("2-0", "2-1", "1-0")]


@pytest.mark.parametrize("recipe", METHODS, ids=lambda r: r.name)
def test_two_processes_train_every_method_as_one_process(trained_by_two_and_by_one, recipe):
    rank0, rank1, one = (run["weights"][recipe.name] for run in trained_by_two_and_by_one)
    assert len(rank0) == len(one) == (2 if recipe.stage_one else 1)  # stage 1 too, where there is one
    for stage, (a, b, reference) in enumerate(zip(rank0, rank1, one), 1):
        assert a.keys() == reference.keys()
        for name, value in reference.items():
            assert torch.equal(a[name], b[name]), f"{recipe.name}, fit {stage}: {name} differs between processes"
            # measured: weights within 1e-6, banks 7e-8, CRD's Z (about 100) 2e-5: the sums' order
            if value.is_floating_point():
                torch.testing.assert_close(a[name], value, rtol=1e-4, atol=1e-5, msg=lambda m: (
                    f"{recipe.name}, fit {stage}: {name} of two processes of 8 images is not that of "
                    f"one process of 16: {m}"))
            else:
                assert torch.equal(a[name], value), f"{recipe.name}, fit {stage}: {name}"
    accuracies = [run["accuracies"][recipe.name] for run in trained_by_two_and_by_one]
    assert accuracies[0] == accuracies[1]  # each process evaluates the whole test set


def test_crds_bank_moved_and_is_one_bank_under_fit(trained_by_two_and_by_one):
    rank0, rank1, one = (run["weights"]["CRD"][0] for run in trained_by_two_and_by_one)
    for name in ("memory.student_bank", "memory.teacher_bank", "memory.z"):
        assert torch.equal(rank0[name], rank1[name]), f"the processes' {name} drifted apart"
        torch.testing.assert_close(rank0[name], one[name], rtol=1e-4, atol=1e-5)


def test_ddp_leaves_alone_only_the_frozen_teacher_and_crds_bank(trained_by_two_and_by_one):
    rank0, _, one = (run["left_out"] for run in trained_by_two_and_by_one)
    assert set(one.values()) == {None}  # one process: no DistributedDataParallel at all
    crd = set(rank0["CRD"])
    assert {"memory.student_bank", "memory.teacher_bank", "memory.z"} <= crd  # kept in step by the gather
    teacher = {name for name in crd if name.startswith("teacher.")}
    assert teacher and crd == teacher | {"memory.student_bank", "memory.teacher_bank", "memory.z"}
    assert set(rank0["KD"]) == {name for name in rank0["KD"] if name.startswith("teacher.")} != set()
    assert rank0["CifarResNet"] == []  # a plain student: DDP synchronises all of it


def test_the_shares_of_a_global_batch_are_contiguous_and_cover_it(monkeypatch):
    import hintlearn_mini.distributed as distributed

    batch = torch.arange(7)
    assert my_shard(batch)[0] is batch  # one process: all of it
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "processes", lambda rank=rank: (rank, 2))
        shares.append(my_shard(batch)[0].tolist())
    assert shares == [[0, 1, 2, 3], [4, 5, 6]]


def test_batchnorm_goes_back_to_plain_layers_with_the_same_tensors():
    model = build_model("resnet8")
    before = [id(t) for t in [*model.parameters(), *model.buffers()]]
    names = _replace_layers(model, torch.nn.BatchNorm2d, _to_sync)
    assert names and all(isinstance(model.get_submodule(n), torch.nn.SyncBatchNorm) for n in names)
    assert [id(t) for t in [*model.parameters(), *model.buffers()]] == before  # an optimiser still trains them
    _replace_layers(model, torch.nn.SyncBatchNorm, _to_plain, only=names)
    assert all(type(model.get_submodule(n)) is torch.nn.BatchNorm2d for n in names)
    assert [id(t) for t in [*model.parameters(), *model.buffers()]] == before
    with synchronised_batchnorm([model], "cpu"):  # one process: nothing to synchronise
        assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())


BENCH_UNDER_TORCHRUN = """
import sys, torch
sys.path.insert(0, {tests!r})
from conftest import random_images
from hintlearn_mini.bench import main, runner
from hintlearn_mini.models import build_model

# the command line as a reader types it, on random images and an untrained teacher
runner.load_experiment_data = lambda profile: (random_images(256), random_images(64, seed=1))
runner.profile_teacher = lambda pair: torch.manual_seed(0) and build_model("resnet8").eval()
main(sys.argv[1:])
"""


def test_a_killed_two_process_benchmark_resumes_without_losing_or_duplicating_a_row(tmp_path):
    out, script = tmp_path / "bench.csv", tmp_path / "bench_under_torchrun.py"
    script.write_text(BENCH_UNDER_TORCHRUN.format(tests=str(Path(__file__).parent)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), "--profile", "quick", "--device", "cpu", "--seeds", "0",
               "--methods", "student alone", "ReviewKD", "--out", str(out)]
    environment = dict(os.environ, HINTLEARN_CACHE=str(tmp_path / "cache"), HINTLEARN_DOWNLOAD="0",
                       HINTLEARN_PRECISION="fp32")
    launcher = subprocess.Popen(command, env=environment, start_new_session=True)
    deadline = time.time() + 300
    while not read_results(out) and time.time() < deadline and launcher.poll() is None:
        time.sleep(0.05)
    os.killpg(launcher.pid, signal.SIGKILL)  # torchrun and both processes, no chance to clean up
    launcher.wait()
    before = read_results(out)
    assert [r["method"] for r in before] == ["student alone"], "kill the benchmark after its first row"
    with open(out, newline="") as f:  # complete CSV, never half a row
        assert all(len(row) == len(bench.FIELDS) for row in csv.reader(f))
    assert subprocess.run(command, env=environment, timeout=300).returncode == 0
    rows = read_results(out)
    assert rows[:1] == before  # the finished run kept, not redone
    assert [(r["method"], r["processes"]) for r in rows] == [("student alone", "2"), ("ReviewKD", "2")]
    assert subprocess.run(command, env=environment, timeout=300).returncode == 0
    assert read_results(out) == rows  # nothing left to train, nothing written twice


def test_only_process_zero_writes_results_and_the_run_cache(tmp_path, monkeypatch):
    from conftest import random_images
    from hintlearn_mini import runs
    from hintlearn_mini.bench import results

    monkeypatch.setattr(results, "is_writer", lambda: False)
    results.write_rows(tmp_path / "rows.csv", [{"method": "KD"}], ["method"])
    assert not (tmp_path / "rows.csv").exists()
    monkeypatch.setattr(runs, "is_writer", lambda: False)
    monkeypatch.setattr(runs, "process_zero_says", lambda value: False)  # process 0: not in the cache
    runs.cached_fit(lambda: build_model("resnet8"), random_images(16), random_images(8, seed=1), seed=0,
                    profile=dataclasses.replace(TWO_PROCESSES, epochs=1), progress=False)
    assert not list((tmp_path / "cache").rglob("*.json"))  # trained, but not written by this process


def test_a_run_of_several_processes_has_a_key_of_its_own(monkeypatch):
    from conftest import random_images
    from hintlearn_mini import runs

    model, data = build_model("resnet8"), random_images(16)
    one = runs.run_key(model, 0, TWO_PROCESSES, data, data)
    monkeypatch.setattr(runs, "processes", lambda: (0, 2))
    assert runs.run_key(model, 0, TWO_PROCESSES, data, data) != one  # BatchNorm sees each process's share


def test_jobs_and_torchrun_do_not_mix(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit):
        bench.main(["--profile", "quick", "--device", "cpu", "--jobs", "2"])
    assert "leave out --jobs" in capsys.readouterr().err
