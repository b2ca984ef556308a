"""The course material: otter-grader assignments and the learner edition of the book.

``course/assignments/<name>/<name>.ipynb`` is one master notebook per method chapter, in
otter-grader's format (see book/instructor.md). These tests

* read the masters: one per method chapter, named as learners receive them, stored
  without outputs, every question with public and hidden exception-based tests;
* run ``otter assign`` on each, into a temporary folder. Otter's own run of the tests on
  the solutions is skipped (``--no-run-tests``): grading the solution notebook below does
  the same, and reads the score;
* grade the solution notebook (full marks) and the untouched learner copy (zero) with
  ``otter run``. It exits 0 whatever the score, so the score is read from results.json;
* grade, for every question, the solution notebook with a plausible wrong answer in place
  of that question's solution (``WRONG_ANSWERS``): the question must lose points;
* check that the learner copies hold no solution and no hidden test, and run under nbval;
* build the book as published and as the learner edition (``_config_learner.yml``), and
  check that the learner edition has no solution text, no notebook sources and no
  download, launch or repository buttons;
* check that ``_config_learner.yml`` is ``_config.yml`` with the learner changes only.

Everything is written to temporary folders, never into the repository.
"""
from __future__ import annotations

import ast
import copy
import csv
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ROOT / "course" / "assignments"
BIN = Path(sys.executable).parent
METHOD_CHAPTERS = ("02_knowledge_distillation", "03_fitnets", "04_attention_transfer", "05_fsp", "06_crd",
                   "07_reviewkd")
ASSIGNED_CHAPTERS = (*METHOD_CHAPTERS, "08_comparison")   # chapters 8 and 9 share one assignment
# Each part of the book has one "run and explain" question graded by hand, in one of these masters.
PARTS = {"the spine (chapters 1-2)": ("ch02_knowledge_distillation",),
         "chapters 3-5": ("ch03_fitnets", "ch04_attention_transfer", "ch05_fsp"),
         "chapters 6-7": ("ch06_crd", "ch07_reviewkd"),
         "chapters 8-9": ("ch08_comparison",)}
MASTERS = sorted(ASSIGNMENTS.glob("*/*.ipynb"))
NAMES = [path.stem for path in MASTERS]
TIMEOUT = 600   # seconds for one otter, nbval or jupyter-book command
VOID_ELEMENTS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                           "track", "wbr"})   # HTML elements without an end tag


def run(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run a command; its exit code and the end of its output."""
    done = subprocess.run(cmd, check=False, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    return done.returncode, (done.stdout + done.stderr)[-6000:]


# --------------------------------------------------------------- reading the masters
@dataclass
class Question:
    name: str
    points: float
    public_tests: list[str] = field(default_factory=list)   # test function names
    hidden_tests: list[str] = field(default_factory=list)
    solution_lines: list[str] = field(default_factory=list)
    solution_cells: list[str] = field(default_factory=list)   # the source of each solution cell
    manual: bool = False                                        # graded by hand, from a rubric
    prompt: str = ""                                            # the question's markdown
    answer_lines: list[str] = field(default_factory=list)      # a manual question's answer, in the master


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def exception_test_name(code: str) -> str:
    """The name of the function an exception-based test cell defines and calls; otter
    accepts nothing else in such a cell."""
    body = ast.parse(code).body
    if (len(body) == 2 and isinstance(body[0], ast.FunctionDef) and isinstance(body[1], ast.Expr)
            and isinstance(body[1].value, ast.Call) and getattr(body[1].value.func, "id", None) == body[0].name):
        return body[0].name
    raise ValueError(f"a test cell must define one function and call it, as in otter's exception-based "
                     f"format (hidden ones start with a line '# HIDDEN'); this one does not:\n{code}")


def solution_lines(code: str) -> list[str]:
    """The distinctive lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` in a cell."""
    lines, inside = [], False
    for line in code.splitlines():
        marker = line.strip().upper()
        if marker in ("# BEGIN SOLUTION", "# END SOLUTION"):
            inside = marker == "# BEGIN SOLUTION"
        elif inside and len(line.strip()) >= 12 and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def read_master(path: Path) -> tuple[dict, list[Question]]:
    """The assignment config and the questions of a master notebook (otter's raw-cell format)."""
    config, questions, block = {}, [], None
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        text = source(cell)
        first, _, rest = text.partition("\n")
        first = first.strip().upper()
        if cell["cell_type"] == "raw":
            if first == "# ASSIGNMENT CONFIG":
                config = yaml.safe_load(rest)
            elif first == "# BEGIN QUESTION":
                questions.append(Question(**yaml.safe_load(rest)))
            elif first in ("# BEGIN SOLUTION", "# BEGIN TESTS"):
                block = first
            elif first.startswith("# END"):
                block = None
        elif cell["cell_type"] == "code" and questions and block == "# BEGIN TESTS":
            hidden = first == "# HIDDEN"
            name = exception_test_name(rest if hidden else text)
            (questions[-1].hidden_tests if hidden else questions[-1].public_tests).append(name)
        elif cell["cell_type"] == "code" and questions and block == "# BEGIN SOLUTION":
            questions[-1].solution_lines += solution_lines(text)
            questions[-1].solution_cells.append(text)
        elif cell["cell_type"] == "markdown" and questions and block == "# BEGIN SOLUTION":
            questions[-1].answer_lines += [line.strip() for line in text.splitlines() if len(line.strip()) >= 20]
        elif cell["cell_type"] == "markdown" and questions and not questions[-1].prompt:
            questions[-1].prompt = text
    return config, questions


def total_points(path: Path) -> float:
    """All the points of a master, those graded by hand included."""
    return sum(q.points for q in read_master(path)[1])


def autograded(path: Path) -> list[Question]:
    return [q for q in read_master(path)[1] if not q.manual]


def autograded_points(path: Path) -> float:
    """The points otter run grades: results.json counts these only."""
    return sum(q.points for q in autograded(path))


def test_one_master_per_method_chapter_and_one_for_chapters_8_and_9():
    expected = [f"ch{chapter}" for chapter in ASSIGNED_CHAPTERS]
    assert NAMES == expected, (f"course/assignments/ should hold one master per method chapter and one for "
                               f"chapters 8-9, <name>/<name>.ipynb with names {expected}; found {NAMES}")
    missing = [c for c in ASSIGNED_CHAPTERS if not (ROOT / "book" / f"{c}.ipynb").is_file()]
    assert not missing, f"assignments for chapters that are not in book/: {missing}"


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_master_is_named_as_learners_receive_it(master: Path):
    config, _ = read_master(master)
    assert config.get("name") == master.stem == master.parent.name, (
        f"{master.relative_to(ROOT)}: the folder, the file and the config's name must agree (learner copies "
        f"open themselves by file name, and Gradescope checks the name); config name {config.get('name')!r}")
    shared = master.parent / config.get("config_file", "")
    assert shared.is_file() and shared.name == "otter_config.yml", (
        f"{master.relative_to(ROOT)}: its config should load the shared settings with "
        f"'config_file: ../otter_config.yml'; got {config.get('config_file')!r}")


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_master_is_stored_without_outputs(master: Path):
    """Masters are stored clean: exception-based tests need no stored output, and nbval
    (`make test`) runs every master. Stored outputs would only be answers going stale."""
    cells = json.loads(master.read_text(encoding="utf-8"))["cells"]
    dirty = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, (f"{master.relative_to(ROOT)}: code cells {dirty} carry outputs; clear them with "
                       f"`.venv/bin/jupyter nbconvert --clear-output --inplace {master.relative_to(ROOT)}`")


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_every_question_has_public_and_hidden_tests(master: Path):
    questions = autograded(master)
    assert len(questions) >= 2, f"{master.name}: {len(questions)} autograded question(s); an assignment asks 2 or 3"
    for q in questions:
        assert q.public_tests and q.hidden_tests and q.solution_lines, (
            f"{master.name}, {q.name}: needs a solution, a public test and a hidden test (first line '# HIDDEN'); "
            f"public {q.public_tests}, hidden {q.hidden_tests}, solution lines {len(q.solution_lines)}")


def manual_questions(master: Path) -> list[Question]:
    return [q for q in read_master(master)[1] if q.manual]


def rubric_points(prompt: str) -> list[float]:
    """The points of each row of the question's rubric, a table headed ``| rubric | points |``."""
    lines = prompt.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"\|\s*rubric\s*\|\s*points\s*\|", line)), None)
    rows = [] if start is None else [line for line in lines[start + 2:] if line.startswith("|")]
    return [float(row.rstrip(" |").rsplit("|", 1)[1]) for row in rows]


def bench_commands(prompt: str) -> list[list[str]]:
    """The ``python -m hintlearn_mini.bench`` commands of a question, split as a shell would."""
    import shlex

    text = prompt.replace("\\\n", " ")
    return [shlex.split(line)[3:] for line in text.splitlines() if line.startswith("python -m hintlearn_mini.bench")]


def test_each_part_of_the_book_has_a_run_and_explain_question_with_a_rubric():
    """The spine, chapters 3-5, 6-7 and 8-9: one question each, graded by hand, that says what to
    run, how long it takes, what to explain, and a rubric whose points add up to the question's."""
    for part, names in PARTS.items():
        found = [(n, q) for n in names for q in manual_questions(ASSIGNMENTS / n / f"{n}.ipynb")]
        assert len(found) == 1, f"{part}: expected one question graded by hand in {names}; found {found}"
        name, q = found[0]
        rubric = rubric_points(q.prompt)
        assert q.points > 0 and rubric and sum(rubric) == q.points, (
            f"{name}, {q.name}: {q.points} points, but its rubric rows give {rubric}")
        assert bench_commands(q.prompt) and "**Run time.**" in q.prompt and "minutes" in q.prompt, (
            f"{name}, {q.name}: say what to run (a `python -m hintlearn_mini.bench` command) and how long it takes")
        assert "**Explain**" in q.prompt, f"{name}, {q.name}: say what the learner should explain"
        answer = " ".join(q.answer_lines)
        assert "book/results/" in answer and not re.search(r"\d\.\d|\d\s*%", answer), (
            f"{name}, {q.name}: the master's answer says what to look for and where the numbers are "
            f"(book/results/), without typing measured numbers: {answer}")
    every = [(m.stem, q.name) for m in MASTERS for q in manual_questions(m)]
    assert len(every) == len(PARTS), f"one manual question per part of the book; found {every}"


def test_manual_questions_run_methods_and_options_the_benchmark_has():
    """A command a learner cannot run is a defect: every method named exists, every option parses."""
    import contextlib
    import io

    from hintlearn_mini import bench

    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
        bench.main(["--help"])
    known = set(re.findall(r"--[a-z][\w-]*", shown.getvalue()))
    for master in MASTERS:
        for q in manual_questions(master):
            for args in bench_commands(q.prompt):
                where = f"{master.stem}, {q.name}: `{' '.join(args)}`"
                starts = [i for i, a in enumerate(args) if a.startswith("--")] + [len(args)]
                values = {args[i]: args[i + 1:j] for i, j in zip(starts, starts[1:])}
                assert set(values) <= known, f"{where}: options {sorted(set(values) - known)} do not exist"
                unknown = [m for m in values.get("--methods", []) if m not in {r.name for r in bench.ALL_RECIPES}]
                assert values.get("--methods") and not unknown, f"{where}: unknown methods {unknown}"
                assert values.get("--seeds") and all(v.isdigit() for v in values["--seeds"] + values.get(
                    "--epochs", [])), f"{where}: name the seeds (and epochs) as integers"
                assert len(values.get("--out", [])) == 1, f"{where}: write the learner's own results file"


def test_answer_key_reads_every_manual_question_without_measured_numbers():
    key = (ROOT / "course" / "answer_key.md").read_text(encoding="utf-8")
    for master in MASTERS:
        for q in manual_questions(master):
            assert f"`{master.stem}`, {q.name}" in key, f"course/answer_key.md has no section for {master.stem}, {q.name}"
    assert "book/results/bench-laptop.csv" in key
    typed = re.findall(r"\d+\.\d+\s*(?:%|points)", key)
    assert not typed, f"course/answer_key.md types measured numbers {typed}: say where they are instead"


def test_shared_otter_config_turns_off_what_cannot_run_here():
    shared = yaml.safe_load((ASSIGNMENTS / "otter_config.yml").read_text())
    assert shared["export_cell"]["pdf"] is False, "PDF export needs xelatex; keep export_cell: {pdf: false}"
    assert shared["tests"] == {"files": False, "ok_format": False}, (
        "tests must be exception-based (ok_format: false: printed output is not compared) and travel in "
        f"the notebook (files: false); got {shared['tests']}")
    assert shared["generate"] is True, "generate: true makes the autograder zip that otter run uses"


# ------------------------------------------------------------------- otter assign
@pytest.fixture(scope="module")
def assigned(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """``otter assign`` of every master: name -> (return code, log, output folder)."""
    out = tmp_path_factory.mktemp("assigned")
    results = {}
    for master in MASTERS:
        cmd = [str(BIN / "otter"), "assign", "--no-run-tests", str(master), str(out / master.stem)]
        results[master.stem] = (*run(cmd, cwd=out), out / master.stem)
    return results


def assignment(assigned, name: str) -> Path:
    """The output folder of a successful ``otter assign``; fails with otter's log otherwise."""
    returncode, log, folder = assigned[name]
    assert returncode == 0, f"`otter assign` of {name} failed with rc {returncode}:\n{log}"
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_otter_assign_succeeds(assigned, name: str):
    folder = assignment(assigned, name)
    expected = [folder / "student" / f"{name}.ipynb", folder / "autograder" / f"{name}.ipynb"]
    missing = [str(p.relative_to(folder)) for p in expected if not p.is_file()]
    zips = list((folder / "autograder").glob(f"{name}-autograder_*.zip"))
    assert not missing and len(zips) == 1, (f"otter assign of {name} should write the learner copy, the solution "
                                            f"notebook and one autograder zip; missing {missing}, zips {zips}")


@pytest.mark.parametrize("name", NAMES)
def test_learner_copy_has_no_solution_and_no_hidden_test(assigned, name: str):
    copy_path = assignment(assigned, name) / "student" / f"{name}.ipynb"
    nb = json.loads(copy_path.read_text(encoding="utf-8"))
    text = "\n".join(source(c) for c in nb["cells"])
    tests = json.dumps(nb["metadata"]["otter"]["tests"])
    _, questions = read_master(ASSIGNMENTS / name / f"{name}.ipynb")
    leaked = [line for q in questions for line in q.solution_lines + q.answer_lines if line in text]
    hidden = [t for q in questions for t in q.hidden_tests if t in tests]
    public = [t for q in questions for t in q.public_tests if t not in tests]
    assert not leaked, f"the learner copy of {name} contains solution lines: {leaked}"
    assert not hidden, f"the learner copy of {name} carries hidden tests: {hidden}"
    assert not public, f"the learner copy of {name} lacks the public tests {public}: grader.check has nothing to run"


@pytest.mark.parametrize("name", NAMES)
def test_learner_copy_keeps_the_manual_questions_with_an_answer_cell(assigned, name: str):
    copy_path = assignment(assigned, name) / "student" / f"{name}.ipynb"
    cells = json.loads(copy_path.read_text(encoding="utf-8"))["cells"]
    text = "\n".join(source(c) for c in cells)
    for q in manual_questions(ASSIGNMENTS / name / f"{name}.ipynb"):
        heading = q.prompt.splitlines()[0]
        assert heading in text, f"the learner copy of {name} lost the question {heading!r}"
        after = text[text.index(heading):]
        assert "_Type your answer here" in after, f"the learner copy of {name} has no answer cell for {q.name}"


# ---------------------------------------------------------------------- otter run
def otter_run(zip_path: Path, submission: Path, out: Path) -> tuple[int, str, Path]:
    out.mkdir(parents=True)
    cmd = [str(BIN / "otter"), "run", "--no-logo", "-a", str(zip_path), "-o", str(out), str(submission)]
    return (*run(cmd, cwd=out), out / "results.json")


def otter_runs(jobs: dict) -> dict:
    """``otter_run`` of each job, key -> (zip, submission, output folder), two at a time:
    key -> (return code, log, results.json)."""
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        futures = {key: pool.submit(otter_run, *args) for key, args in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def autograder_zip(folder: Path, name: str) -> Path:
    return next((folder / "autograder").glob(f"{name}-autograder_*.zip"))


@pytest.fixture(scope="module")
def graded(assigned, tmp_path_factory) -> dict[tuple[str, str], tuple[int, str, Path]]:
    """``otter run`` of each solution notebook and each untouched learner copy:
    (name, "solution" | "learner") -> (return code, log, results.json). Runs two at a time."""
    out = tmp_path_factory.mktemp("graded")
    jobs = {}
    for name, (returncode, _, folder) in assigned.items():
        if returncode != 0:
            continue
        zip_path = autograder_zip(folder, name)
        jobs[(name, "solution")] = (zip_path, folder / "autograder" / f"{name}.ipynb", out / name / "solution")
        jobs[(name, "learner")] = (zip_path, folder / "student" / f"{name}.ipynb", out / name / "learner")
    return otter_runs(jobs)


def question_scores(graded, key: tuple[str, str], what: str) -> dict[str, tuple[float, float]]:
    """Each question's (points scored, points possible) in one ``otter run``, read from its results.json;
    ``what`` names the notebook graded, for the messages."""
    assert key in graded, f"{key[0]} was not graded: `otter assign` failed (see test_otter_assign_succeeds)"
    returncode, log, results = graded[key]
    assert returncode == 0 and results.is_file(), f"`otter run` on {what} failed:\n{log}"
    tests = json.loads(results.read_text())["tests"]
    return {t["name"]: (t["score"], t["max_score"]) for t in tests if "score" in t}


def score(graded, name: str, which: str) -> tuple[float, float]:
    """(points scored, points possible) of one ``otter run``, read from its results.json."""
    scores = question_scores(graded, (name, which), f"the {which} notebook of {name}").values()
    return sum(got for got, _ in scores), sum(possible for _, possible in scores)


@pytest.mark.parametrize("name", NAMES)
def test_solution_notebook_gets_full_marks(graded, name: str):
    got, possible = score(graded, name, "solution")
    expected = autograded_points(ASSIGNMENTS / name / f"{name}.ipynb")
    assert possible == expected, (f"{name}: results.json counts {possible} points, the master's autograded "
                                  f"questions {expected}")
    assert got == possible, (f"{name}: the solutions score {got} / {possible}; a test fails on them. Run the master "
                             f"top to bottom (pytest {ASSIGNMENTS.relative_to(ROOT)}/{name}) to see which")


@pytest.mark.parametrize("name", NAMES)
def test_untouched_learner_copy_gets_zero(graded, name: str):
    got, possible = score(graded, name, "learner")
    assert possible > 0 and got == 0, (f"{name}: an unanswered learner copy scores {got} / {possible}; some test "
                                       "passes without an answer and so gives free points")


# ------------------------------------------------------------------ wrong answers
# For every question, a wrong answer a learner could plausibly hand in, as the code of its answer cell;
# the comment in its body names the mistake. Each must cost that question points. Those marked
# PUBLIC_PASS are caught by the hidden tests alone, and so guard them against being weakened.
PUBLIC_PASS = "(public tests pass)"
WRONG_ANSWERS = {
    ("ch02_knowledge_distillation", "q1"): '''\
def kd_objective_gradient(student_logits, teacher_logits, labels, T, ce_weight, kd_weight):
    # mistake: the soft part without its factor T (the T² of the loss, the 1/T of the chain rule)
    n_images, n_classes = student_logits.shape
    hard = F.softmax(student_logits, dim=1) - F.one_hot(labels, n_classes).float()
    soft = F.softmax(student_logits / T, dim=1) - F.softmax(teacher_logits / T, dim=1)
    return (ce_weight * hard + kd_weight * soft) / n_images
''',
    ("ch02_knowledge_distillation", "q2"): '''\
def temperature_for_entropy(logits, entropy):
    # mistake: entropy in bits (log base 2), not nats
    def mean_entropy(T):
        p = F.softmax(logits / T, dim=1)
        return float(-(p * torch.log2(p)).sum(dim=1).mean())
    low, high = 0.01, 100.0
    for _ in range(60):
        middle = (low * high) ** 0.5
        low, high = (middle, high) if mean_entropy(middle) < entropy else (low, middle)
    return (low * high) ** 0.5
''',
    ("ch03_fitnets", "q1"): '''\
def regressor_chain(student_shape, teacher_shape):
    # mistake: one convolution of stride 2**k where the paper's building block is a chain of k
    (cs, hs, ws), (ct, ht, wt) = student_shape, teacher_shape
    if hs >= ht:
        conv = nn.Conv2d(cs, ct, 3, stride=hs // ht, padding=1) if hs > ht else nn.Conv2d(cs, ct, 1)
    else:
        conv = nn.ConvTranspose2d(cs, ct, 2 * (ht // hs), stride=ht // hs, padding=ht // hs // 2)
    return nn.Sequential(conv, nn.BatchNorm2d(ct), nn.ReLU())
''',
    ("ch03_fitnets", "q2"): '''\
def paper_hint_loss(regressed, hint):
    # mistake: no shape check, so a (B, C, 1, 1) map broadcasts against the hint (public tests pass)
    return 0.5 * (regressed - hint).pow(2).flatten(1).sum(dim=1).mean()
''',
    ("ch04_attention_transfer", "q1"): '''\
def max_attention_map(feat, p=2):
    # mistake: the power of A without |A|: right for even p only (public tests pass)
    q = feat.pow(p).amax(dim=1).flatten(1)
    return q / q.norm(dim=1, keepdim=True)
''',
    ("ch04_attention_transfer", "q2"): '''\
def at_loss_upsampled(student_feat, teacher_feat, p=2):
    # mistake: upsamples only the teacher's map, never the student's (public tests pass)
    if teacher_feat.shape[-1] < student_feat.shape[-1]:
        teacher_feat = F.interpolate(teacher_feat, size=student_feat.shape[-2:], mode="bilinear",
                                     align_corners=False)
    maps = [F.normalize(f.pow(p).mean(dim=1).flatten(1), dim=1) for f in (student_feat, teacher_feat)]
    return (maps[0] - maps[1]).pow(2).mean()
''',
    ("ch05_fsp", "q1"): '''\
def balancing_weights(student_pairs, teacher_pairs):
    # mistake: λ_i = 1 / L_i: equal terms, but their sum is n, not the unweighted loss L
    terms = [float((losses.fsp_matrix(*s) - losses.fsp_matrix(*t)).pow(2).mean())
             for s, t in zip(student_pairs, teacher_pairs)]
    return [1.0 / term for term in terms]
''',
    ("ch05_fsp", "q2"): '''\
def fsp_worst_entries(student_pair, teacher_pair, k):
    # mistake: the flat index split by C1 instead of C2: right for square matrices only (public tests pass)
    gap = (losses.fsp_matrix(*student_pair) - losses.fsp_matrix(*teacher_pair)).pow(2).mean(dim=0)
    top = gap.flatten().topk(k).indices
    return [(int(n) // gap.shape[0], int(n) % gap.shape[0]) for n in top]
''',
    ("ch06_crd", "q1"): '''\
def hard_negative_info_nce(student_embed, teacher_embed, tau, k):
    # mistake: the k least similar negatives (the easiest ones), not the hardest
    logits = student_embed @ teacher_embed.t() / tau
    eye = torch.eye(len(logits), dtype=torch.bool)
    easiest = -(-logits.masked_fill(eye, float("inf"))).topk(k, dim=1).values
    chosen = torch.cat([logits.diagonal()[:, None], easiest], dim=1)
    return F.cross_entropy(chosen, torch.zeros(len(logits), dtype=torch.long))
''',
    ("ch06_crd", "q2"): '''\
def crd_scores(student_embed, bank, tau, n_data):
    # mistake: Z from each image's own row, not from the whole batch
    out = torch.exp(torch.bmm(bank, student_embed.unsqueeze(2)) / tau)
    return out / (out.mean(dim=1, keepdim=True) * n_data)
''',
    ("ch07_reviewkd", "q1"): '''\
def hcl_level_weights(h, levels=(4, 2, 1)):
    # mistake: the weight halves at each level listed, used or not (public tests pass)
    weights, w = [1.0], 1.0
    for size in levels:
        w /= 2
        if size < h:
            weights.append(w)
    return [x / sum(weights) for x in weights]
''',
    ("ch07_reviewkd", "q2"): '''\
def level_shares(student_feats, teacher_feats):
    # mistake: the shares of each level's plain MSE, not of its HCL
    levels = [float(((fs - ft) ** 2).mean()) for fs, ft in zip(student_feats, teacher_feats)]
    return [level / sum(levels) for level in levels]
''',
    ("ch08_comparison", "q1"): '''\
def conv_multiply_adds(c_in, c_out, kernel, out_h, out_w, groups=1):
    # mistake: ignores the groups, counting a grouped convolution as a full one (public tests pass)
    k_h, k_w = kernel
    return c_out * out_h * out_w * c_in * k_h * k_w
''',
    ("ch08_comparison", "q2"): '''\
def paired_by_seed(results, base):
    # mistake: no error with fewer than two shared seeds (public tests pass)
    seeds = sorted(set(results) & set(base))
    return seeds, [results[s] - base[s] for s in seeds]
''',
}


def defined_functions(code: str) -> set[str]:
    """The functions a code cell defines at its top level; none for a cell that is not Python."""
    try:
        body = ast.parse(code).body
    except SyntaxError:   # an IPython magic or shell escape: not an answer cell
        return set()
    return {node.name for node in body if isinstance(node, ast.FunctionDef)}


def names_used(code: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Name)}


def mistake(code: str) -> str:
    """What a wrong answer gets wrong: its first comment."""
    comments = [line.strip() for line in code.splitlines() if line.strip().startswith("#")]
    return comments[0].lstrip("#").strip() if comments else ""


def test_every_question_has_a_wrong_answer():
    """A question cannot be added without a wrong answer that the tests above must catch."""
    questions = {(master.stem, q.name): q for master in MASTERS for q in autograded(master)}
    missing, stale = sorted(set(questions) - set(WRONG_ANSWERS)), sorted(set(WRONG_ANSWERS) - set(questions))
    assert not missing and not stale, (f"WRONG_ANSWERS needs one plausible wrong answer per question; "
                                       f"missing {missing}, entries for no question {stale}")
    for key, code in WRONG_ANSWERS.items():
        expected = set().union(*map(defined_functions, questions[key].solution_cells))
        assert defined_functions(code) == expected and mistake(code), (
            f"the wrong answer to {key} should define {sorted(expected)}, as the solution does, and name "
            f"its mistake in a comment; it defines {sorted(defined_functions(code))}")


def public_tests_pass(results: Path, question: str) -> bool:
    """Whether all public tests of a question passed, as otter's "Public Tests" summary says."""
    tests = json.loads(results.read_text())["tests"]
    summary = next((t["output"] for t in tests if t["name"] == "Public Tests"), "")
    return f"{question} results: All test cases passed!" in summary.splitlines()


def with_wrong_answer(solution: Path, wrong_code: str, submission: Path) -> Path:
    """Write as ``submission`` the solution notebook with ``wrong_code`` in place of the one code
    cell that defines the same function."""
    nb = json.loads(solution.read_text(encoding="utf-8"))
    function = defined_functions(wrong_code)
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and function & defined_functions(source(c))]
    assert len(cells) == 1, f"{solution.name}: {len(cells)} code cells define {function}; expected one"
    cells[0]["source"] = wrong_code
    submission.parent.mkdir(parents=True)
    submission.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return submission


@pytest.fixture(scope="module")
def graded_wrong(assigned, tmp_path_factory) -> dict[tuple[str, str], tuple[int, str, Path]]:
    """``otter run`` of the solution notebook with one wrong answer of WRONG_ANSWERS in place:
    (name, question) -> (return code, log, results.json). Runs two at a time."""
    out = tmp_path_factory.mktemp("wrong")
    jobs = {}
    for (name, question), wrong_code in WRONG_ANSWERS.items():
        returncode, _, folder = assigned[name]
        if returncode != 0:
            continue
        here = out / name / question
        solution = folder / "autograder" / f"{name}.ipynb"
        submission = with_wrong_answer(solution, wrong_code, here / f"{name}.ipynb")
        jobs[(name, question)] = (autograder_zip(folder, name), submission, here / "graded")
    return otter_runs(jobs)


def independent_questions(name: str, question: str, replaced: set[str]) -> list[str]:
    """The other questions of an assignment, those whose solutions do not call the functions ``replaced``."""
    return [q.name for q in autograded(ASSIGNMENTS / name / f"{name}.ipynb")
            if q.name != question and not replaced & set().union(*map(names_used, q.solution_cells))]


@pytest.mark.parametrize(("name", "question"), WRONG_ANSWERS)
def test_a_wrong_answer_loses_points(graded_wrong, name: str, question: str):
    wrong_code = WRONG_ANSWERS[(name, question)]
    scores = question_scores(graded_wrong, (name, question), f"{name} with a wrong answer to {question}")
    got, possible = scores[question]
    assert got < possible, (f"{name}, {question}: a wrong answer ({mistake(wrong_code)}) gets full marks, "
                            f"{got:g} / {possible:g}: no test of the question catches it. Make a hidden test "
                            "check what the mistake changes")
    replaced = defined_functions(wrong_code)
    others = independent_questions(name, question, replaced)
    lost = {q: scores[q] for q in others if scores[q][0] < scores[q][1]}
    assert not lost, (f"{name}: the wrong answer to {question} cost points in questions that do not call "
                      f"{sorted(replaced)}, (scored, possible) {lost}: was another cell replaced?")
    results = graded_wrong[(name, question)][2]
    assert PUBLIC_PASS not in mistake(wrong_code) or public_tests_pass(results, question), (
        f"{name}, {question}: the wrong answer marked {PUBLIC_PASS!r} fails a public test, so it no "
        "longer shows that the hidden tests catch what the public ones miss: choose another mistake, or "
        "drop the mark")


def test_learner_copies_run_under_nbval(assigned, tmp_path):
    """Every cell of every learner copy runs: unanswered questions fail their checks quietly."""
    copies = [assignment(assigned, name) / "student" / f"{name}.ipynb" for name in NAMES]
    code_cells = sum(1 for path in copies for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "code")
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
           "-q", f"--rootdir={tmp_path}", *map(str, copies)]
    returncode, log = run(cmd, cwd=tmp_path)
    assert returncode == 0, f"nbval on the learner copies failed (rc {returncode}):\n{log}"
    assert f"{code_cells} passed" in log, f"expected all {code_cells} code cells to be run and pass:\n{log}"


# ------------------------------------------------------------------ the two books
class PageText(HTMLParser):
    """A page's text, split into what sits inside sphinx-exercise solution blocks and the rest."""
    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.depth = 0   # elements open since a solution block began; 0 outside any
        self.inside: list[str] = []
        self.outside: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in VOID_ELEMENTS:
            return
        if self.depth:
            self.depth += 1
        elif "solution" in (dict(attrs).get("class") or "").split():
            self.depth = 1

    def handle_endtag(self, tag):
        if tag not in VOID_ELEMENTS and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        (self.inside if self.depth else self.outside).append(data)


def squeeze(text: str) -> str:
    return " ".join(text.split())


def pages(html: Path) -> dict[str, PageText]:
    return {p.relative_to(html).as_posix(): PageText(p.read_text(encoding="utf-8"))
            for p in sorted(html.rglob("*.html"))}


def stems(text: str) -> set[str]:
    """The words of a text as Sphinx's English search index stores them."""
    from sphinx.search.en import SearchEnglish

    language = SearchEnglish({})
    return {language.stem(word) for word in language.split(text)}


def search_terms(html: Path) -> set[str]:
    text = (html / "searchindex.js").read_text(encoding="utf-8")
    return set(json.loads(text[text.index("(") + 1:text.rindex(")")])["terms"])


def build_book(out: Path, *options: str) -> Path:
    cmd = [str(BIN / "jupyter-book"), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going",
           *options]
    returncode, log = run(cmd, cwd=ROOT)
    assert returncode == 0, f"`{' '.join(cmd)}` failed with rc {returncode}:\n{log}"
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, Path]:
    """The HTML of the book as published and of the learner edition (as `make learner-book`)."""
    return {"published": build_book(tmp_path_factory.mktemp("published")),
            "learner": build_book(tmp_path_factory.mktemp("learner"), "--config", str(ROOT / "_config_learner.yml"))}


@pytest.fixture(scope="module")
def published_solutions(books) -> list[str]:
    """The lines of the published book found only in its solutions, whitespace squeezed
    (a line such as ``def my_fsp_matrix(f1, f2):`` also stands in the exercise's check cell)."""
    published = pages(books["published"]).values()
    elsewhere = "\n".join(squeeze("".join(page.outside)) for page in published)
    lines = {squeeze(line) for page in published for line in "".join(page.inside).splitlines()}
    return sorted(line for line in lines if len(line) >= 20 and line not in elsewhere)


def test_published_book_shows_solutions_and_sources(books, published_solutions):
    """The control for the learner checks below: what they look for is there when solutions are shown."""
    html = books["published"]
    assert len(published_solutions) >= 20, f"only {len(published_solutions)} solution lines found in {html}"
    assert (html / "_sources").is_dir(), "the published book should offer the notebooks' sources"
    assert "btn-download-source-button" in (html / "book" / "04_attention_transfer.html").read_text(encoding="utf-8")


def test_learner_book_has_no_solution_text(books, published_solutions):
    learner = pages(books["learner"])
    blocks = [name for name, page in learner.items() if page.inside]
    assert not blocks, f"the learner book still has solution blocks on {blocks}"
    text = "\n".join(squeeze("".join(page.outside)) for page in learner.values())
    leaked = sorted({line for line in published_solutions if line in text})
    assert not leaked, f"{len(leaked)} solution lines of the published book appear in the learner book: {leaked[:5]}"
    assert "Solution to Exercise" not in text, "a 'Solution to Exercise' title is left in the learner book"


def test_learner_search_index_has_no_solution_words(books, published_solutions):
    published = pages(books["published"])
    elsewhere = stems(" ".join("".join(page.outside) for page in published.values()))
    only_in_solutions = stems(" ".join(published_solutions)) - elsewhere
    indexed = only_in_solutions & search_terms(books["published"])
    assert indexed, "no word found only in solutions and in the published search index: the check below tests nothing"
    leaked = sorted(indexed & search_terms(books["learner"]))
    assert not leaked, f"the learner book's search index has words found only in solutions: {leaked}"


def test_learner_book_keeps_the_exercises(books):
    for chapter in METHOD_CHAPTERS:
        text = (books["learner"] / "book" / f"{chapter}.html").read_text(encoding="utf-8")
        assert 'class="exercise' in text, f"book/{chapter}.html of the learner book lost its exercises"


def test_learner_book_has_no_sources_and_no_buttons(books):
    html = books["learner"]
    assert not (html / "_sources").exists(), "the learner book ships _sources/ (the notebooks, with solutions)"
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    markers = ("btn-download-source-button", "launch-buttons", f'href="{repository}')
    found = [f"{name}: {m}" for name, p in ((p.relative_to(html), p) for p in html.rglob("*.html"))
             for m in markers if m in p.read_text(encoding="utf-8")]
    assert not found, f"the learner book links to the notebooks or the repository: {found[:5]}"


def test_masters_stay_out_of_the_book(books):
    toc = (ROOT / "_toc.yml").read_text()
    assert "course/" not in toc, "_toc.yml lists a file under course/: masters hold solutions and hidden tests"
    hidden = [t for m in MASTERS for q in read_master(m)[1] for t in q.hidden_tests]
    for edition, html in books.items():
        assert not list(html.rglob("course")), f"the {edition} book has pages from course/"
        text = "".join(p.read_text(encoding="utf-8") for p in html.rglob("*.html"))
        shown = [t for t in hidden if t in text]
        assert not shown, f"the {edition} book shows hidden tests of the masters: {shown}"


# -------------------------------------------------------- configuration and docs
def with_learner_changes(book: dict, learner_substitutions: dict) -> dict:
    """_config.yml as _config_learner.yml must be: hidden solutions, no sources, no
    buttons, and its own text for each substitution of the book."""
    config = copy.deepcopy(book)
    config["html"].update(use_repository_button=False, use_issues_button=False, use_edit_page_button=False)
    config.pop("launch_buttons", None)
    book_substitutions = book["parse"]["myst_substitutions"]
    config["parse"]["myst_substitutions"] = {k: learner_substitutions.get(k) for k in book_substitutions}
    config["sphinx"]["recursive_update"] = True
    config["sphinx"]["config"].update(hide_solutions=True, html_copy_source=False,
                                      html_theme_options={"use_download_button": False})
    return config


def differences(expected, actual, path: str = "") -> list[str]:
    """Where two parsed YAML documents differ, as 'key.path: expected ... , found ...'."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return [d for key in sorted(set(expected) | set(actual), key=str)
                for d in differences(expected.get(key), actual.get(key), f"{path}.{key}" if path else str(key))]
    return [] if expected == actual else [f"{path}: expected {expected!r}, found {actual!r}"]


def test_learner_config_is_the_book_config_with_learner_changes():
    book = yaml.safe_load((ROOT / "_config.yml").read_text())
    learner = yaml.safe_load((ROOT / "_config_learner.yml").read_text())
    substitutions = learner.get("parse", {}).get("myst_substitutions", {})
    drift = differences(with_learner_changes(book, substitutions), learner)
    assert not drift, ("_config_learner.yml has drifted from _config.yml (jupyter-book --config replaces "
                       "_config.yml, so the learner config must repeat it): copy the change over.\n  "
                       + "\n  ".join(drift))
    same = [k for k, v in substitutions.items() if v == book["parse"]["myst_substitutions"].get(k)]
    assert not same, f"the learner build should say something else for the substitutions {same}"


@pytest.mark.parametrize("master", MASTERS, ids=NAMES)
def test_instructor_page_lists_the_assignment_and_its_points(master: Path):
    page = (ROOT / "book" / "instructor.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith(f"| `{master.stem}` |")]
    points = total_points(master)
    assert len(rows) == 1 and re.search(rf"\|\s*{points:g}\s*\|\s*$", rows[0]), (
        f"book/instructor.md should have one table row for {master.stem} ending with its {points:g} points; "
        f"rows: {rows}")


# ------------------------------------------------------------------ grading a class
def test_make_grade_writes_a_gradebook_of_a_whole_class(assigned, tmp_path):
    """A class of three: full marks, an untouched copy, and one with only the first answer."""
    sys.path.insert(0, str(ROOT / "tools"))
    import grade

    name = NAMES[0]
    folder = assignment(assigned, name)
    course = tmp_path / "course"
    (course / name).mkdir(parents=True)
    (course / name / "autograder").symlink_to(folder / "autograder")
    questions = autograded(ASSIGNMENTS / name / f"{name}.ipynb")
    first_answer = next(c for c in questions[0].solution_cells)
    class_folder = tmp_path / "submissions"
    for learner, notebook in (("ada", folder / "autograder"), ("bob", folder / "student")):
        (class_folder / learner).mkdir(parents=True)
        (class_folder / learner / f"{name}.ipynb").write_bytes((notebook / f"{name}.ipynb").read_bytes())
    learner_copy = json.loads((folder / "student" / f"{name}.ipynb").read_text())
    functions = defined_functions(first_answer)
    for cell in learner_copy["cells"]:  # half done: the first question answered, the rest as handed out
        if cell["cell_type"] == "code" and functions & defined_functions(source(cell)):
            cell["source"] = first_answer
    (class_folder / "cy").mkdir()
    (class_folder / "cy" / f"{name}.ipynb").write_text(json.dumps(learner_copy))
    rows, summary = grade.grade_class(class_folder, course)
    book = {r["submission"].split("/")[0]: r for r in csv.DictReader(open(class_folder / "gradebook.csv"))}
    possible = autograded_points(ASSIGNMENTS / name / f"{name}.ipynb")
    assert set(book) == {"ada", "bob", "cy"} and all(r["assignment"] == name for r in book.values())
    assert float(book["ada"]["total"]) == possible == float(book["ada"]["possible"])
    assert float(book["bob"]["total"]) == 0
    assert float(book["cy"]["total"]) == questions[0].points == float(book["cy"][questions[0].name])
    means = {r["question"]: float(r["mean"]) for r in csv.DictReader(open(class_folder / "summary.csv"))}
    assert means[questions[0].name] == pytest.approx(2 * questions[0].points / 3, abs=0.01)
    assert means[questions[1].name] == pytest.approx(questions[1].points / 3, abs=0.01)
    assert len(rows) == 3 and len(summary) == len(questions)


def test_make_grade_runs_the_grading_tool_and_says_what_it_needs():
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "grade", "SUBMISSIONS=class/week3"],
                         capture_output=True, text=True, timeout=60)
    assert "tools/grade.py class/week3" in dry.stdout
    missing = subprocess.run(["make", "-s", "-C", str(ROOT), "grade"], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "make grade SUBMISSIONS=" in missing.stdout + missing.stderr
