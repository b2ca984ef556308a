"""The benchmark writes one row per finished run and resumes after being killed."""
import csv
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import random_images
from hintlearn_mini.bench import METHODS, read_results, run_benchmark, step_costs
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16, seeds=(0, 1))


def _inputs():
    torch.manual_seed(0)
    return {"teacher": build_model("resnet8").eval(), "train_set": random_images(32), "test_set": random_images(16, seed=1)}


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from test_bench import TINY, _inputs
from hintlearn_mini.bench import run_benchmark
run_benchmark({out!r}, TINY, {methods!r}, **_inputs())
"""


def test_every_method_runs_and_rows_are_tidy(tmp_path):
    out = tmp_path / "bench.csv"
    rows = run_benchmark(out, TINY, list(METHODS), seeds=[0], **_inputs())
    assert [r["method"] for r in rows] == list(METHODS)
    stored = read_results(out)
    assert len(stored) == len(METHODS)
    assert set(stored[0]) == {"method", "seed", "accuracy", "wall_seconds", "extra_parameters",
                              "peak_rss_mb", "profile"}
    extra = {r["method"]: int(r["extra_parameters"]) for r in stored}
    assert extra["student alone"] == 0 and extra["KD"] == 0
    assert extra["FitNets one-stage"] > 0 and extra["CRD"] > 0 and extra["ReviewKD"] > 0


def test_a_killed_benchmark_resumes_without_redoing_or_corrupting(tmp_path):
    out = tmp_path / "bench.csv"
    methods = ["student alone", "KD", "AT"]
    code = RUNNER.format(tests=str(Path(__file__).parent), out=str(out), methods=methods)
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 300
    while len(read_results(out)) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no chance to clean up
    process.wait()
    before = read_results(out)
    assert 2 <= len(before) < 6, "kill the benchmark part-way"
    with open(out, newline="") as f:  # the file is complete CSV, never half a row
        assert all(len(row) == 7 for row in csv.reader(f))
    rows = run_benchmark(out, TINY, methods, **_inputs())
    assert rows[:len(before)] == before  # finished runs kept as they were, not redone
    assert sorted((r["method"], int(r["seed"])) for r in rows) == sorted((m, s) for m in methods for s in (0, 1))


def test_unknown_method_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid methods: student alone, KD"):
        run_benchmark(tmp_path / "b.csv", TINY, ["KD", "DKD"], **_inputs())


def test_step_costs_are_ratios_to_kd():
    inputs = _inputs()
    costs = step_costs(dataclasses.replace(TINY, batch_size=8), inputs["teacher"], inputs["train_set"], rounds=1)
    ratios = {c["method"]: c["ratio_to_kd"] for c in costs}
    assert ratios["KD"] == 1.0 and set(ratios) == {"KD", "FitNets", "AT", "FSP", "CRD", "ReviewKD"}
    assert all(r > 0 for r in ratios.values())
