"""A chapter's set-up, its training helper, its glue and its closing line."""
import dataclasses
import time

import pytest
import torch

from conftest import random_images
from hintlearn_mini import lesson, tables
from hintlearn_mini.bench import recipes
from hintlearn_mini.models import build_model
from hintlearn_mini.profiles import PROFILES

TINY = dataclasses.replace(PROFILES["quick"], epochs=1, batch_size=16, seeds=(0, 1))


def test_start_sets_a_chapter_up_in_one_call(monkeypatch, capsys):
    data = random_images(32)
    monkeypatch.setenv("HINTLEARN_PROFILE", "quick")
    monkeypatch.setattr(lesson, "load_experiment_data", lambda profile: (data, data))
    chapter = lesson.start()
    assert chapter.profile.name == "quick" and chapter.train_set is data
    assert not chapter.teacher.training and chapter.started <= time.perf_counter()
    assert "quick" in capsys.readouterr().out  # the profile, described


def test_a_lesson_trains_its_recipes_through_the_run_cache_at_each_seed(capsys):
    torch.manual_seed(0)
    chapter = lesson.Lesson(TINY, random_images(32), random_images(16, seed=1), build_model("resnet8").eval())
    first = chapter.train([recipes.STUDENT_ALONE, recipes.KD])
    assert list(first) == ["student alone", "KD"] and [len(h) for h in first.values()] == [2, 2]
    assert [h.seed for h in first["KD"]] == [0, 1] and not any(h.cached for h in first["KD"])
    again = chapter.train([recipes.KD], seeds=[1])
    assert again["KD"][0].cached and again["KD"][0].final_accuracy == first["KD"][1].final_accuracy


def test_glue_stores_plain_numbers_the_page_can_format(monkeypatch):
    """``{glue:text}`name:.1f``` formats the stored repr: a NumPy scalar's repr
    ('np.float64(1.5)') fails the book's build, so glue stores a Python number."""
    import myst_nb
    import numpy as np

    stored = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: stored.update({name: value}))
    lesson.glue("minutes", np.float64(1.5))
    lesson.glue("table", tables.ResultTable(None))
    assert type(stored["minutes"]) is float and f"{eval(repr(stored['minutes'])):.1f}" == "1.5"
    assert isinstance(stored["table"], tables.ResultTable)


def test_an_experiment_glues_its_longest_run_time_and_its_paired_outcome_against_its_first_run(monkeypatch):
    laptop = PROFILES["laptop"]
    row = dict(profile="laptop", teacher=laptop.teacher, student=laptop.student,
               epochs=str(laptop.epochs), train_per_class=str(laptop.train_per_class))
    rows = [dict(row, method=m, seed=str(s), accuracy=str(a), wall_seconds=str(w))
            for m, s, a, w in [("KD", 0, 50.0, 60), ("KD", 1, 52.0, 600), ("KD", 2, 51.0, 90),
                               ("KD, T=8", 0, 53.0, 120), ("KD, T=8", 1, 54.0, 180), ("KD, T=8", 2, 53.5, 150),
                               ("student alone", 0, 40.0, 30)]]
    glued = {}
    monkeypatch.setattr(lesson, "glue", lambda name, value: glued.setdefault(name, value))
    t2, t8 = recipes.KD_TEMPERATURES
    lesson.glue_experiment("temperature", rows, laptop, [recipes.KD, t8])
    assert set(glued) == {"temperature_minutes", "temperature_outcome"}
    assert glued["temperature_minutes"] == 2.0  # KD, T=8's fastest run: 120 s
    outcome = glued["temperature_outcome"].data
    assert list(outcome.index) == ["KD", "KD, T=8"]
    assert list(outcome.columns.get_level_values(0).unique()) == ["", "vs KD"]  # the first run is the baseline
    assert outcome.loc["KD, T=8", ("vs KD", "Δ")] == pytest.approx(2.5)
    assert outcome.loc["KD, T=8", ("", "n")] == 3
    with pytest.raises(ValueError, match=r"no benchmark rows of \['KD, T=2'\]"):
        lesson.glue_experiment("temperature", rows, laptop, [recipes.KD, t2])


def test_a_chapters_closing_line_adds_the_training_time_of_the_runs_it_read_back(monkeypatch):
    start = time.perf_counter()
    monkeypatch.setattr(lesson, "cache_savings", lambda: (1, 90.0))
    line = lesson.report_time(start, PROFILES["laptop"])
    assert "; 1 run was read from the run cache, which had trained in 90 s" in line
    assert line.endswith("with an empty cache it takes about 90 s")
    monkeypatch.setattr(lesson, "cache_savings", lambda: (3, 300.0))
    assert "; 3 runs were read from the run cache" in lesson.report_time(start, PROFILES["laptop"])
    monkeypatch.setattr(lesson, "cache_savings", lambda: (0, 0.0))
    assert lesson.report_time(start, PROFILES["laptop"]).endswith("also its time with an empty cache")
