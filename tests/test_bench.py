"""The benchmark writes one row per finished run and resumes after being killed."""
import csv
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import random_images
from hintlearn_mini import bench, methods, runs, train, zoo
from hintlearn_mini.bench import (CONTROLS, DIAGNOSTICS, METHODS, find_recipes, main, plateau, read_results, recipes,
                                  run_benchmark, step_costs, train_recipe)
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES, fit_kwargs
from hintlearn_mini.train import make_optimizer, make_scheduler, seed_everything

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16, seeds=(0, 1))


def _inputs():
    torch.manual_seed(0)
    return {"teacher": build_model("resnet8").eval(), "train_set": random_images(32), "test_set": random_images(16, seed=1)}


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
from test_bench import TINY, _inputs
from hintlearn_mini.bench import find_recipes, run_benchmark
run_benchmark({out!r}, TINY, find_recipes({methods!r}), **_inputs())
"""


def test_every_method_runs_and_rows_are_tidy(tmp_path):
    out = tmp_path / "bench.csv"
    rows = run_benchmark(out, TINY, METHODS, seeds=[0], **_inputs())
    assert [r["method"] for r in rows] == [recipe.name for recipe in METHODS]
    stored = read_results(out)
    assert len(stored) == len(METHODS)
    assert set(stored[0]) == {"method", "seed", "accuracy", "val_accuracy", "wall_seconds", "extra_parameters",
                              "peak_rss_mb", "profile", "teacher", "student", "precision",
                              "epochs", "train_per_class", "threads", "jobs", "processes"}
    assert {(r["threads"], r["jobs"], r["processes"]) for r in stored} == {("1", "1", "1")}
    assert {(r["epochs"], r["train_per_class"]) for r in stored} == {(str(TINY.epochs), str(TINY.train_per_class))}
    # the same method and seed at another budget is another run, not a finished one
    longer = run_benchmark(out, dataclasses.replace(TINY, epochs=2), [recipes.KD], seeds=[0], **_inputs())
    assert [(r["method"], int(r["epochs"])) for r in longer[len(METHODS):]] == [("KD", 2)]
    assert {r["precision"] for r in stored} == {TINY.resolved_precision()}
    assert {(r["teacher"], r["student"]) for r in stored} == {("resnet32", "resnet8")}
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
        assert all(len(row) == len(bench.FIELDS) for row in csv.reader(f))
    rows = run_benchmark(out, TINY, find_recipes(methods), **_inputs())
    assert rows[:len(before)] == before  # finished runs kept as they were, not redone
    assert sorted((r["method"], int(r["seed"])) for r in rows) == sorted((m, s) for m in methods for s in (0, 1))


def test_unknown_method_lists_valid_ones(capsys):
    with pytest.raises(ValueError, match="valid methods: 'student alone', 'KD', 'FitNets one-stage'"):
        find_recipes(["KD", "OFD"])
    with pytest.raises(SystemExit):
        bench.main(["--methods", "KD", "OFD"])
    assert "unknown method(s) ['OFD']" in capsys.readouterr().err


def test_each_precision_is_its_own_row(tmp_path):
    out = tmp_path / "parity.csv"
    for precision in ("fp32", "bf16", "fp32"):  # the third finds its rows done
        run_benchmark(out, dataclasses.replace(TINY, precision=precision), [recipes.STUDENT_ALONE], [0], **_inputs())
    rows = read_results(out)
    assert sorted(r["precision"] for r in rows) == ["bf16", "fp32"]


def test_step_costs_are_speeds_against_the_plain_loop_and_kd():
    inputs = _inputs()
    costs = step_costs(dataclasses.replace(TINY, batch_size=8), inputs["teacher"], inputs["train_set"], rounds=1)
    rows = {c["method"]: c for c in costs}
    assert set(rows) == {"plain float32 loop", "student alone", "KD, teacher in the loop", "KD",
                         "KD, first run at a seed", "FitNets", "AT", "FSP", "CRD", "ReviewKD"}
    assert rows["plain float32 loop"]["speed_vs_plain"] == 1.0
    assert rows["KD, teacher in the loop"]["cost_vs_kd"] == 1.0
    plain = rows["plain float32 loop"]["images_per_s"]  # rounded to ±0.5 images/s, like every row
    for row in costs:
        assert row["images_per_s"] > 0
        rounding = 1 + 0.5 * row["speed_vs_plain"] + 0.005 * plain  # of both speeds and of the ratio
        assert abs(row["speed_vs_plain"] * plain - row["images_per_s"]) <= 0.02 * row["images_per_s"] + rounding


def test_first_run_at_a_seed_computes_its_teacher_logits_every_time(monkeypatch):
    # a second measurement finds the first one's stores: "first run" must still compute
    from hintlearn_mini.teacher_outputs import TeacherLogits
    inputs = _inputs()
    computed = []
    compute = TeacherLogits.compute
    monkeypatch.setattr(TeacherLogits, "compute", lambda self, epoch: computed.append(self.seed) or compute(self, epoch))
    for _ in range(2):
        computed.clear()
        step_costs(dataclasses.replace(TINY, batch_size=8), inputs["teacher"], inputs["train_set"], rounds=1)
    assert computed.count(1000) == 2, computed  # both epochs of the first-run measurement, again


@pytest.fixture
def tiny_cifar100(tmp_path):
    """CIFAR-100's layout in miniature: 100 classes, one train and one test JPEG each."""
    root = tmp_path / "cifar100-jpeg"
    g = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for c in range(100):
            (root / split / f"class{c:03d}").mkdir(parents=True)
            image = torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8, generator=g)
            Image.fromarray(image.numpy()).save(root / split / f"class{c:03d}" / "0.jpg")
    return root


def test_paper_profile_trains_its_teachers_once_and_runs_every_pair(tiny_cifar100, tmp_path, monkeypatch):
    monkeypatch.setenv("HINTLEARN_DATA", str(tiny_cifar100))
    paper = PROFILES["paper"]
    tiny = dataclasses.replace(paper, train_per_class=None, test_per_class=None, epochs=1, init_epochs=1,
                               batch_size=50, seeds=(0,), eval_every=None, device="cpu")
    trained = []
    real_train_teacher = zoo.train_teacher
    monkeypatch.setattr(zoo, "train_teacher", lambda *a, **k: trained.append(a[0]["arch"]) or real_train_teacher(*a, **k))
    out = tmp_path / "paper.csv"
    chosen = [recipes.KD, recipes.FSP_TWO_STAGE, recipes.REVIEWKD]
    rows = run_benchmark(out, tiny, chosen)
    assert sorted(trained) == ["resnet32x4", "wrn_40_2"]
    assert {(r["teacher"], r["student"]) for r in rows} == {("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2")}
    assert [r["method"] for r in rows] == [r.name for r in chosen] * 2 and all(r["profile"] == "paper" for r in rows)
    assert run_benchmark(out, tiny, chosen) == read_results(out)  # all of them (all data: None) done
    teacher = zoo.profile_teacher(tiny.for_pair("wrn_40_2", "wrn_16_2"))
    assert sorted(trained) == ["resnet32x4", "wrn_40_2"]  # read back, not trained again
    assert teacher.fc.out_features == 100
    manifest = zoo.teacher_manifest("wrn_40_2_cifar100", zoo.cache_dir() / "zoo")
    assert manifest["recipe"]["schedule"] == "step" and manifest["recipe"]["dataset"] == "cifar100"
    zoo.profile_teacher(dataclasses.replace(tiny, epochs=2).for_pair("wrn_40_2", "wrn_16_2"))
    assert trained.count("wrn_40_2") == 2  # another recipe: trained again


def test_paper_profile_uses_the_published_weights_and_schedule():
    paper = PROFILES["paper"]
    assert paper.teacher_student_pairs() == (("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2"))
    assert (paper.dataset, paper.epochs, paper.batch_size, paper.lr, paper.schedule) == ("cifar100", 240, 64, 0.05, "step")
    assert paper.stage_one_epochs() == 30 and PROFILES["laptop"].stage_one_epochs() == PROFILES["laptop"].epochs // 2 == 32
    for teacher, student in paper.teacher_student_pairs():
        pair = paper.for_pair(teacher, student)
        reviewkd = recipes.REVIEWKD.build(pair, zoo.build_model(teacher, 100), None, recipes.student(pair))
        assert reviewkd.weight == 5.0
    laptop = PROFILES["laptop"]
    assert recipes.REVIEWKD.build(laptop, zoo.build_model("resnet32"), None, recipes.student(laptop)).weight == 1.0


def test_paper_profile_without_a_gpu_says_how_to_run_it(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA device is visible.*--device cpu"):
        main(["--profile", "paper"])
    with pytest.raises(SystemExit):
        main(["--pair", "resnet32:resnet9"])
    assert "model names from resnet8" in capsys.readouterr().err


def test_each_step_cost_times_its_own_method(monkeypatch):
    from hintlearn_mini.bench import speed
    trained = []
    real_fit = speed.fit
    monkeypatch.setattr(speed, "fit", lambda module, *a, **k: trained.append(type(module).__name__)
                        or real_fit(module, *a, **k))  # a spy: every call still trains for real
    inputs = _inputs()
    step_costs(dataclasses.replace(TINY, batch_size=8), inputs["teacher"], inputs["train_set"], rounds=1)
    assert {"CifarResNet", "KD", "FitNets", "AttentionTransfer", "FSP", "CRD", "ReviewKD"} <= set(trained)
    assert trained.count("KD") == 1 + 3  # the store's warm-up, then the three KD rows


def _recording_fit(monkeypatch):
    """Patch ``fit`` where the benchmark calls it (directly, and through the run cache)
    to record (module, keyword arguments) of every call."""
    calls = []
    real_fit = train.fit

    def recording(module, *args, **kwargs):
        calls.append((module, kwargs))
        return real_fit(module, *args, **kwargs)
    for module in (bench.recipes, bench.convergence, bench.fast, runs):
        monkeypatch.setattr(module, "fit", recording)
    return calls


def test_a_chapter_reads_the_benchmarks_runs_from_the_run_cache(tmp_path, capsys):
    inputs = _inputs()
    # a chapter reads the runs the benchmark trained at its own thread count
    threads = torch.get_num_threads()
    rows = run_benchmark(tmp_path / "b.csv", TINY, [recipes.STUDENT_ALONE, recipes.KD], seeds=[0], threads=threads,
                         **inputs)
    teacher, train_set, test_set = inputs["teacher"], inputs["train_set"], inputs["test_set"]
    # what a chapter writes, with its own profile object (other seeds to run, same run)
    chapter_profile = dataclasses.replace(TINY, seeds=(0, 1, 2, 3, 4))
    _, alone = runs.cached_fit(lambda: build_model(TINY.student), train_set, test_set, seed=0,
                               profile=chapter_profile)
    _, kd = runs.cached_fit(lambda: methods.KD(build_model(TINY.student), teacher), train_set, test_set,
                            seed=0, profile=chapter_profile)
    assert alone.cached and kd.cached
    assert [alone.final_accuracy, kd.final_accuracy] == [r["accuracy"] for r in rows]
    # and a benchmark rerun into a new file reads them too, recording their training time
    again = run_benchmark(tmp_path / "c.csv", TINY, [recipes.KD], seeds=[0], threads=threads, **inputs)
    assert again[0]["accuracy"] == rows[1]["accuracy"]
    assert again[0]["wall_seconds"] == pytest.approx(round(kd.seconds, 1))
    assert "read from the run cache" in capsys.readouterr().out


def test_diagnostics_and_controls_train_the_setting_their_name_says(tmp_path, monkeypatch):
    calls = _recording_fit(monkeypatch)
    trained = {}  # method -> [(module, fit kwargs)] of its run
    for recipe in [*CONTROLS, *DIAGNOSTICS]:
        calls.clear()
        rows = run_benchmark(tmp_path / "diag.csv", TINY, [recipe], seeds=[0], **_inputs())
        assert rows[-1]["method"] == recipe.name
        trained[recipe.name] = list(calls)
    first = {name: c[0][0] for name, c in trained.items()}  # the module of the first fit
    matched = TINY.epochs + TINY.stage_one_epochs()
    assert trained["student alone, epoch-matched"][-1][1]["epochs"] == matched
    assert trained["KD, epoch-matched"][-1][1]["epochs"] == matched
    assert first["KD, T=2"].T == 2.0 and first["KD, T=8"].T == 8.0
    assert first["AT, β×0.1"].beta == pytest.approx(100.0) and first["AT, β×10"].beta == pytest.approx(10000.0)
    assert first["FitNets one-stage, β×10"].beta == pytest.approx(1000.0)
    assert first["FitNets one-stage, β×0.1"].beta == pytest.approx(10.0)
    assert first["FitNets one-stage, hint stage 1"].stage == 1
    assert first["FitNets one-stage, hint stage 3"].stage == 3
    assert first["CRD, β×10"].beta == pytest.approx(8.0) and first["CRD, β×0.1"].beta == pytest.approx(0.08)
    assert first["CRD, in-batch InfoNCE"].in_batch and not first["CRD, β×10"].in_batch
    assert first["ReviewKD, weight ×10"].weight == pytest.approx(10.0)
    assert not first["ReviewKD, no review"].with_review and first["ReviewKD, weight ×10"].with_review
    assert first["FSP two-stage, weight ×0.1"].weight == pytest.approx(0.1)
    assert first["FSP two-stage, weight ×10"].weight == pytest.approx(10.0)


def test_stage_one_of_two_stage_methods_runs_at_a_constant_learning_rate(tmp_path, monkeypatch):
    calls = _recording_fit(monkeypatch)
    run_benchmark(tmp_path / "two.csv", TINY, [recipes.FITNETS_TWO_STAGE, recipes.FSP_TWO_STAGE], seeds=[0],
                  **_inputs())
    stage_one = [kw for m, kw in calls if isinstance(m, (methods.FitNets, methods.FSP))]
    assert len(stage_one) == 2
    for kwargs in stage_one:
        assert kwargs["schedule"] == "constant" and kwargs["epochs"] == TINY.stage_one_epochs()
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(1))], lr=0.05)
    scheduler = make_scheduler(optimizer, "constant", epochs=3, steps_per_epoch=2)
    lrs = []
    for _ in range(3):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == [0.05, 0.05, 0.05]


def test_paper_profile_uses_plain_momentum_as_repdistiller(monkeypatch):
    assert fit_kwargs(PROFILES["paper"])["nesterov"] is False
    assert fit_kwargs(PROFILES["laptop"])["nesterov"] is True
    seen = []
    real = train.make_optimizer
    monkeypatch.setattr(train, "make_optimizer", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    train.fit(build_model("resnet8"), random_images(8), None, epochs=1, batch_size=8, nesterov=False,
              progress=False)
    assert seen and seen[0].defaults["nesterov"] is False and seen[0].defaults["momentum"] == 0.9


def test_plateau_trains_the_student_alone_for_each_length_and_resumes(tmp_path, monkeypatch):
    calls = _recording_fit(monkeypatch)
    out = tmp_path / "plateau.csv"
    inputs = _inputs()
    rows = plateau(out, TINY, [1, 2], seeds=[0, 1], train_set=inputs["train_set"], test_set=inputs["test_set"])
    assert [(r["epochs"], r["seed"]) for r in rows] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert [kw["epochs"] for _, kw in calls] == [1, 1, 2, 2]
    assert all(not hasattr(m, "teacher") for m, _ in calls)
    stored = read_results(out)
    assert list(stored[0]) == bench.PLATEAU_FIELDS
    assert [k for k in ("epochs", "seed", "accuracy") if k in stored[0]] == ["epochs", "seed", "accuracy"]
    plateau(out, TINY, [1, 2, 3], seeds=[0, 1], train_set=inputs["train_set"], test_set=inputs["test_set"])
    assert [kw["epochs"] for _, kw in calls] == [1, 1, 2, 2, 3, 3]  # resumed: only the new length


def test_accuracies_keep_one_budget_and_pair_per_method_and_seed():
    laptop = PROFILES["laptop"]
    row = dict(profile="laptop", teacher=laptop.teacher, student=laptop.student,
               epochs=str(laptop.epochs), train_per_class=str(laptop.train_per_class))
    rows = [dict(row, method="KD", seed="1", accuracy="41.5"),
            dict(row, method="student alone", seed="0", accuracy="38.0"),
            dict(row, method="KD", seed="0", accuracy="40.0"),
            dict(row, method="KD", seed="2", accuracy="99.0", epochs="999"),  # another budget
            dict(row, method="KD", seed="3", accuracy="98.0", student="resnet44_half"),
            dict(row, method="KD", seed="4", accuracy="97.0", profile="paper")]
    found = bench.accuracies(rows, laptop)
    assert found == {"student alone": {0: 38.0}, "KD": {0: 40.0, 1: 41.5}}
    assert list(found) == ["student alone", "KD"]  # the benchmark's order, not the file's
    assert bench.accuracies(rows, laptop, student="resnet44_half") == {"KD": {3: 98.0}}


def test_fast_optimization_runs_are_the_benchmarks_runs_and_resume(tmp_path, monkeypatch):
    inputs = _inputs()
    pair = TINY.for_pair(*TINY.teacher_student_pairs()[0])
    args = (pair, inputs["teacher"], inputs["train_set"], inputs["test_set"], 0)
    expected = {r.name: round(train_recipe(r, *args)[0].final_accuracy, 2)
                for r in (recipes.STUDENT_ALONE, recipes.FSP_TWO_STAGE)}
    calls = _recording_fit(monkeypatch)
    out = tmp_path / "fsp-fast.csv"
    rows = bench.fast_optimization(out, TINY, budgets=(1, 2), seeds=[0], **inputs)
    assert [(r["method"], r["epochs"]) for r in rows] == [
        ("student alone", 1), ("student alone", 2), ("FSP two-stage", 1), ("FSP two-stage", 2)]
    # at the profile's own budget the rows are the benchmark's runs of the same seed
    assert {r["method"]: r["accuracy"] for r in rows if r["epochs"] == TINY.epochs} == expected
    stage_one = [kw for m, kw in calls if isinstance(m, methods.FSP)]
    assert len(stage_one) == 1 and stage_one[0]["schedule"] == "constant"  # once, shared by the budgets
    assert list(read_results(out)[0]) == bench.FAST_FIELDS
    calls.clear()
    bench.fast_optimization(out, TINY, budgets=(1, 2, 3), seeds=[0], **inputs)
    assert [kw["epochs"] for _, kw in calls] == [3, TINY.stage_one_epochs(), 3]  # resumed: only epoch 3


def test_a_broken_results_file_is_repaired_on_resume_and_its_runs_trained_again(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    run_benchmark(out, TINY, [recipes.STUDENT_ALONE], **_inputs())
    lines = out.read_text().splitlines()
    assert len(lines) == 3  # header, seeds 0 and 1
    cut = lines[2][: len(lines[2]) // 2]  # seed 1's row cut mid-row by a crash
    out.write_text("\n".join([lines[0], lines[1].replace(",0,", ",zero,", 1), cut]) + "\n")
    rows = run_benchmark(out, TINY, [recipes.STUDENT_ALONE], **_inputs())
    said = capsys.readouterr().out
    assert said.count("dropping a broken row") == 2 and "line 3" in said and "line 2" in said
    assert sorted(int(r["seed"]) for r in rows) == [0, 1]
    with open(out, newline="") as f:  # the file is whole again
        assert all(len(row) == len(bench.FIELDS) for row in csv.reader(f))
    assert read_results(out, bench.FIELDS) == read_results(out)


def test_a_cut_teacher_trained_on_first_use_is_trained_again(tiny_cifar100, monkeypatch, capsys):
    monkeypatch.setenv("HINTLEARN_DATA", str(tiny_cifar100))
    tiny = dataclasses.replace(PROFILES["paper"], train_per_class=None, test_per_class=None, epochs=1,
                               batch_size=50, device="cpu").for_pair("wrn_40_2", "wrn_16_2")
    trained = []
    real_train_teacher = zoo.train_teacher
    monkeypatch.setattr(zoo, "train_teacher", lambda *a, **k: trained.append(1) or real_train_teacher(*a, **k))
    zoo.profile_teacher(tiny)
    folder = zoo.cache_dir() / "zoo"
    weights, manifest = folder / "wrn_40_2_cifar100.pt", folder / "wrn_40_2_cifar100.json"
    weights.write_bytes(weights.read_bytes()[:1000])  # a killed run, a full disk
    teacher = zoo.profile_teacher(tiny)
    assert len(trained) == 2 and "wrn_40_2_cifar100.json is unusable" in capsys.readouterr().out
    manifest.write_text(manifest.read_text()[:50])  # the manifest cut short
    zoo.profile_teacher(tiny)
    assert len(trained) == 3 and "JSONDecodeError" in capsys.readouterr().out
    assert teacher.fc.out_features == 100 and not list(folder.glob(".*.tmp"))


def _run_records() -> dict[str, list]:
    """The run cache's records of this test's cache, each run's epochs without their times."""
    records = {}
    for path in (runs.cache_dir() / "runs").glob("*.json"):
        stored = __import__("json").loads(path.read_text())
        records[path.stem] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in stored["epochs"]]
    return records


def test_two_jobs_train_the_rows_of_one_job_bit_for_bit(tmp_path, monkeypatch):
    chosen = [recipes.STUDENT_ALONE, recipes.KD, recipes.FITNETS_TWO_STAGE]
    found = {}
    for jobs in (1, 2):
        monkeypatch.setenv("HINTLEARN_CACHE", str(tmp_path / f"cache-{jobs}"))  # nothing read back
        rows = run_benchmark(tmp_path / f"jobs-{jobs}.csv", TINY, chosen, seeds=[0, 1], jobs=jobs, **_inputs())
        assert {(r["threads"], r["jobs"]) for r in read_results(tmp_path / f"jobs-{jobs}.csv")} == {("1", str(jobs))}
        measured = ("wall_seconds", "peak_rss_mb", "jobs")
        found[jobs] = (sorted(tuple((k, str(v)) for k, v in r.items() if k not in measured) for r in rows),
                       _run_records())
    assert len(found[1][0]) == 6
    assert found[2] == found[1]  # the same rows, and every cached run's losses to the last digit
    assert len(found[1][1]) == 4  # the one-stage runs went through the run cache


def test_every_cost_ratio_points_the_way_its_name_says(monkeypatch):
    from hintlearn_mini.bench import speed

    speeds = {"KD, teacher in the loop": 50.0, "student alone": 200.0, "slow": 25.0}  # images/s
    cases = [speed.StepCase(name, lambda *a: None, {"marker": name}) for name in speeds]
    monkeypatch.setattr(speed, "plain_loop", lambda *a, **k: 100.0)
    monkeypatch.setattr(speed, "_epoch_speed", lambda module, profile, data, seed, marker=None: speeds.get(marker, 1.0))
    monkeypatch.setattr(speed, "student", lambda profile: None)
    monkeypatch.setattr(speed, "KD_FROM_THE_STORE", speed.StepCase("KD", lambda *a: None))  # the store's warm-up
    rows = {r["method"]: r for r in step_costs(TINY, teacher=object(), train_set=object(), rounds=1, cases=cases)}
    # faster than the plain loop: speed_vs_plain > 1; cheaper than KD: cost_vs_kd < 1
    assert rows["student alone"]["speed_vs_plain"] == 2.0 and rows["student alone"]["cost_vs_kd"] == 0.25
    assert rows["slow"]["speed_vs_plain"] == 0.25 and rows["slow"]["cost_vs_kd"] == 2.0
    assert rows["student alone"]["step_ms"] == round(1000 * TINY.batch_size / 200.0, 1)
    assert rows["plain float32 loop"]["speed_vs_plain"] == 1.0 and rows["plain float32 loop"]["cost_vs_kd"] == 0.5


_FAKE_ACCURACY = 50.0


def _fake_training(monkeypatch) -> list:
    """Every run the benchmark, the plateau or fast optimization would train, recorded
    and skipped: (recipe or "fit", seed, epochs)."""
    from types import SimpleNamespace

    from hintlearn_mini.bench import runner
    trained = []
    history = SimpleNamespace(final_accuracy=_FAKE_ACCURACY, final_validation_accuracy=_FAKE_ACCURACY,
                              cached=False, seconds=1.0,
                              epochs=[{"train_acc": 60.0, "test_acc": _FAKE_ACCURACY}])

    def fake_recipe(recipe, pair, teacher, train_set, test_set, seed, validation_set=None):
        trained.append((recipe.name, seed, pair.epochs))
        return history, 0

    def fake_fit(module, *args, seed=0, epochs=1, **kwargs):
        trained.append(("fit", seed, epochs))
        return history
    monkeypatch.setattr(runner, "train_recipe", fake_recipe)
    for module in (bench.convergence, bench.fast):
        monkeypatch.setattr(module, "fit", fake_fit)
    monkeypatch.setattr(bench.fast, "student", lambda profile: torch.nn.Linear(1, 1))
    stage_one = lambda profile, teacher, student: (SimpleNamespace(student=student), None)  # noqa: E731
    monkeypatch.setattr(bench.fast, "FSP_TWO_STAGE", dataclasses.replace(recipes.FSP_TWO_STAGE, stage_one=stage_one))
    return trained


def _rewrite(path, field: str, value: str) -> None:
    """Every row of the results file ``path`` with ``field`` set to ``value``."""
    rows = read_results(path)
    for row in rows:
        row[field] = value
    bench.write_rows(path, rows, list(rows[0]))


@pytest.mark.parametrize("field, value", [("profile", "laptop"), ("epochs", "7"), ("train_per_class", "5"),
                                          ("train_per_class", ""), ("precision", "other"),
                                          ("teacher", "resnet56"), ("student", "resnet20"),
                                          ("method", "AT"), ("seed", "9")])
def test_a_finished_row_counts_only_for_the_run_of_its_whole_budget(tmp_path, monkeypatch, field, value):
    trained = _fake_training(monkeypatch)
    out, inputs = tmp_path / "bench.csv", _inputs()
    run_benchmark(out, TINY, [recipes.KD], seeds=[0], **inputs)
    run_benchmark(out, TINY, [recipes.KD], seeds=[0], **inputs)
    assert len(trained) == 1  # found finished
    _rewrite(out, field, value)  # the row is now another run's
    run_benchmark(out, TINY, [recipes.KD], seeds=[0], **inputs)
    assert len(trained) == 2, f"a row of another {field} counted as this run"


@pytest.mark.parametrize("field, value", [("epochs", "7"), ("train_per_class", "5"), ("seed", "9")])
def test_the_plateau_resumes_only_runs_of_the_same_budget(tmp_path, monkeypatch, field, value):
    trained, out = _fake_training(monkeypatch), tmp_path / "plateau.csv"
    inputs = _inputs()
    for _ in range(2):
        plateau(out, TINY, [1], seeds=[0], train_set=inputs["train_set"], test_set=inputs["test_set"])
    assert len(trained) == 1
    _rewrite(out, field, value)
    plateau(out, TINY, [1], seeds=[0], train_set=inputs["train_set"], test_set=inputs["test_set"])
    assert len(trained) == 2, f"a row of another {field} counted as this run"


@pytest.mark.parametrize("field, value", [("epochs", "7"), ("train_per_class", "5"), ("seed", "9"),
                                          ("method", "AT")])
def test_fast_optimization_resumes_only_runs_of_the_same_budget(tmp_path, monkeypatch, field, value):
    trained, out = _fake_training(monkeypatch), tmp_path / "fsp-fast.csv"
    for _ in range(2):
        bench.fast_optimization(out, TINY, budgets=(1,), seeds=[0], **_inputs())
    assert len(read_results(out)) == 2 and len(trained) == 3  # stage 1 once, two budgets' runs
    _rewrite(out, field, value)
    bench.fast_optimization(out, TINY, budgets=(1,), seeds=[0], **_inputs())
    assert len(trained) > 3, f"a row of another {field} counted as this run"


def test_every_row_records_its_validation_accuracy_beside_its_test_accuracy(tmp_path):
    inputs, validation = _inputs(), random_images(24, seed=7)
    pair = TINY.for_pair(*TINY.teacher_student_pairs()[0])
    chosen = [recipes.KD, recipes.FITNETS_TWO_STAGE]  # one through the run cache, one two-stage
    rows = run_benchmark(tmp_path / "bench.csv", TINY, chosen, seeds=[0], validation_set=validation, **inputs)
    for row, recipe in zip(rows, chosen):
        history, _ = train_recipe(recipe, pair, inputs["teacher"], inputs["train_set"], inputs["test_set"], 0,
                                  validation_set=validation)
        assert row["val_accuracy"] == round(history.final_validation_accuracy, 2), recipe.name
        assert row["accuracy"] == round(history.final_accuracy, 2)
    without = run_benchmark(tmp_path / "other.csv", TINY, [recipes.KD], seeds=[0], **inputs)
    assert without[0]["val_accuracy"] == "" and read_results(tmp_path / "other.csv")[0]["val_accuracy"] == ""


def test_tuning_trains_every_methods_own_setting_at_the_same_factors_and_seeds(tmp_path, monkeypatch):
    from hintlearn_mini.bench import tuning
    trained = _fake_training(monkeypatch)
    inputs = _inputs()
    splits = (inputs["train_set"], random_images(20, seed=3), inputs["test_set"])
    rows = tuning.tune(tmp_path / "tuning.csv", TINY, seeds=(0, 1), teacher=inputs["teacher"], splits=splits)
    tuned = {knob.recipe for knob in recipes.KNOBS}
    assert tuned == set(METHODS) - {recipes.STUDENT_ALONE}  # every method with a setting of its own
    per_method = {}
    for knob in recipes.KNOBS:
        names = [knob.at(f).name for f in recipes.TUNING_FACTORS]
        assert knob.at(1.0) is knob.recipe and len(set(names)) == 5
        per_method.setdefault(knob.recipe.name, set()).update(names)
    assert {len(v) for k, v in per_method.items() if k != "KD"} == {5} and len(per_method["KD"]) == 9
    assert sorted((name, seed) for name, seed, _ in trained) == sorted(
        (r.name, s) for r in tuning.tuning_grid() for s in (0, 1))
    assert {r["val_accuracy"] for r in rows} == {_FAKE_ACCURACY}
    assert recipes.FITNETS_WEIGHTS[0] is recipes._knob(recipes.FITNETS_ONE_STAGE, "β").at(0.1)  # one object


def _tuning_rows(validation: dict, test: dict, profile=PROFILES["laptop"]) -> list[dict]:
    """Rows of ``profile``'s budget: ``validation[method][seed]``, ``test[method][seed]``."""
    base = dict(profile=profile.name, teacher=profile.teacher, student=profile.student, epochs=str(profile.epochs),
                train_per_class=str(profile.train_per_class))
    return [dict(base, method=m, seed=str(s), val_accuracy=str(v), accuracy=str(test[m].get(s, 50.0)))
            for m, by_seed in validation.items() for s, v in by_seed.items()]


def test_a_setting_is_chosen_on_validation_accuracy_never_on_test_accuracy():
    from hintlearn_mini.bench import tuning
    validation, test = {}, {}
    for recipe in tuning.tuning_grid():
        validation[recipe.name] = {s: 50.0 for s in (0, 1, 2)}
        test[recipe.name] = {s: 50.0 for s in (0, 1, 2)}
    at = recipes._knob(recipes.AT, "β")
    validation[at.at(3).name] = {0: 52.0, 1: 51.0, 2: 53.0}   # best on validation
    test[at.at(10).name] = {0: 70.0, 1: 70.0, 2: 70.0}        # best on test: must not matter
    validation[at.at(0.3).name] = {0: 52.0, 1: 51.0, 2: 53.0, 3: 99.0}  # a tie; seed 3 is not shared
    choices = tuning.choose(_tuning_rows(validation, test), PROFILES["laptop"])
    choice = choices["AT"]  # of the tie, ×3 is nearer the default than ×0.3 (log distances 1.10, 1.20)
    assert (choice.chosen, choice.factor, choice.value, choice.seeds) == (at.at(3), 3, 3000.0, (0, 1, 2))
    assert choice.validation == 52.0
    assert choices["CRD"].chosen is recipes.CRD  # all equal: the default, nearest itself
    del validation[at.at(10).name]
    with pytest.raises(ValueError, match=r"grid of 'AT' is not complete.*'AT, β×10'.*--tune"):
        tuning.choose(_tuning_rows(validation, test), PROFILES["laptop"])


def _plateau_rows(per_class: int, gains: dict) -> list[dict]:
    """Plateau rows of one size at three seeds: ``gains[E]``: what doubling E adds."""
    rows, accuracy = [], 40.0
    for epochs in sorted(gains):
        rows += [{"train_per_class": per_class, "epochs": epochs, "seed": s, "accuracy": 0.0,
                  "val_accuracy": accuracy + 0.1 * s} for s in (0, 1, 2)]
        accuracy += gains[epochs]
    return rows


def test_a_sizes_plateau_is_the_first_length_whose_doubling_adds_less_than_two_points():
    from hintlearn_mini.bench.convergence import PLATEAU_CRITERION, plateau_epochs
    assert PLATEAU_CRITERION == 2.0
    rows = _plateau_rows(100, {8: 9.0, 16: 4.0, 32: 1.5, 64: 0.5, 128: 0.0})
    assert plateau_epochs(rows, 100) == 32
    rows += _plateau_rows(500, {8: 9.0, 16: 4.0, 32: 2.5, 64: 0.0})  # 64 is its longest run
    with pytest.raises(ValueError, match=r"no plateau measured on validation for 500 .*32 -> 64: \+2\.50.*--per-class 500"):
        plateau_epochs(rows, 500)
    test_only = [dict(r, val_accuracy="") for r in rows]  # a choice is never made on test accuracy
    with pytest.raises(ValueError, match="doublings: none"):
        plateau_epochs(test_only, 100)


def test_the_data_axis_trains_each_size_for_its_own_plateau_with_its_seeds(tmp_path, monkeypatch):
    from hintlearn_mini.bench.data_axis import DATA_AXIS_SIZES, data_axis
    trained = _fake_training(monkeypatch)
    assert DATA_AXIS_SIZES == {100: (0, 1, 2, 3, 4), 500: (0, 1, 2)}
    plateau_rows = (_plateau_rows(100, {8: 5.0, 16: 1.0, 32: 0.0})
                    + _plateau_rows(500, {8: 5.0, 16: 5.0, 32: 1.0, 64: 0.0}))
    inputs, asked = _inputs(), []

    def splits_of(profile):
        asked.append((profile.train_per_class, profile.epochs))
        return inputs["train_set"], random_images(20, seed=3), inputs["test_set"]
    out = tmp_path / "bench-data-axis.csv"
    data_axis(out, TINY, [recipes.KD], plateau_rows, teacher=inputs["teacher"], splits_of=splits_of)
    assert asked == [(100, 16), (500, 32)]
    assert trained == [("KD", s, 16) for s in range(5)] + [("KD", s, 32) for s in range(3)]
    stored = read_results(out)
    assert [(r["train_per_class"], r["epochs"], r["seed"]) for r in stored] == (
        [("100", "16", str(s)) for s in range(5)] + [("500", "32", str(s)) for s in range(3)])
    data_axis(out, TINY, [recipes.KD], plateau_rows, teacher=inputs["teacher"], splits_of=splits_of)
    assert len(trained) == 8  # resumed: nothing trained twice


def test_plateau_runs_record_their_validation_accuracy(tmp_path):
    inputs, validation = _inputs(), random_images(20, seed=3)
    rows = plateau(tmp_path / "plateau.csv", TINY, [1], seeds=[0], train_set=inputs["train_set"],
                   test_set=inputs["test_set"], validation_set=validation)
    seed_everything(0)
    model = recipes.student(TINY)
    history = train.fit(model, inputs["train_set"], inputs["test_set"], seed=0, progress=False,
                        validation_set=validation, **dict(fit_kwargs(TINY), epochs=1, eval_every=None))
    assert rows[0]["val_accuracy"] == round(history.final_validation_accuracy, 2)
    assert rows[0]["accuracy"] == round(history.final_accuracy, 2)


def test_the_tuned_benchmark_trains_every_method_at_its_default_and_its_chosen_setting(tmp_path, monkeypatch):
    from hintlearn_mini.bench import tuning
    trained = _fake_training(monkeypatch)
    validation = {r.name: {s: 50.0 for s in (0, 1, 2)} for r in tuning.tuning_grid()}
    at_3 = recipes._knob(recipes.AT, "β").at(3)
    validation[at_3.name] = {s: 60.0 for s in (0, 1, 2)}  # AT's choice; every other method keeps its default
    rows = _tuning_rows(validation, validation, TINY)
    inputs = _inputs()
    splits = (inputs["train_set"], random_images(20, seed=3), inputs["test_set"])
    tuning.tuned_benchmark(tmp_path / "bench.csv", TINY, rows, teacher=inputs["teacher"], splits=splits)
    names = {r.name for r in METHODS} | {at_3.name}
    assert sorted(trained) == sorted((n, s, TINY.epochs) for n in names for s in tuning.BENCHMARK_SEEDS)
    assert tuning.BENCHMARK_SEEDS == (0, 1, 2, 3, 4)


def test_every_combined_method_is_the_books_kd_plus_its_own_term():
    inputs = _inputs()
    build = lambda recipe: recipe.build(TINY, inputs["teacher"], inputs["train_set"], build_model("resnet8"))  # noqa: E731
    kd = build(recipes.KD)
    combined = [r for r in METHODS if "+ KD" in r.name or r.name.startswith("KD +")]
    assert {r.name for r in combined} == {"KD + AT", "CRD + KD"}
    for recipe in combined:
        module = build(recipe)
        assert (module.ce_weight, module.kd_weight, module.T) == (kd.ce_weight, kd.kd_weight, kd.T), recipe.name


def test_the_data_axis_command_trains_every_method_at_its_chosen_setting(tmp_path, monkeypatch):
    from hintlearn_mini.bench import cli, tuning
    validation = {r.name: {s: 50.0 for s in (0, 1, 2)} for r in tuning.tuning_grid()}
    crd_3 = recipes._knob(recipes.CRD, "β").at(3)
    validation[crd_3.name] = {s: 60.0 for s in (0, 1, 2)}
    laptop = PROFILES["laptop"]
    tuning_csv, plateau_csv = tmp_path / "tuning.csv", tmp_path / "plateau.csv"
    rows = _tuning_rows(validation, validation)
    bench.write_rows(tuning_csv, rows, list(rows[0]))
    chosen = tuning.tuned_recipes(read_results(tuning_csv), laptop)
    assert chosen == [crd_3 if r is recipes.CRD else r for r in METHODS]
    calls = []
    monkeypatch.setattr(cli, "data_axis", lambda out, profile, recipes, rows, **kw: calls.append((out, recipes)))
    bench.main(["--profile", "laptop", "--data-axis", str(plateau_csv), "--tuned", str(tuning_csv),
                "--out", str(tmp_path / "axis.csv")])
    assert calls == [(tmp_path / "axis.csv", chosen)]
    with pytest.raises(SystemExit):
        bench.main(["--data-axis", str(plateau_csv)])
