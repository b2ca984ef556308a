"""The notebooks in book/ carry the outputs the book shows.

The book is built with ``execute_notebooks: "off"``: it renders the outputs stored in
each notebook and never runs it. A notebook saved without outputs, run out of order,
saved with an error, edited after its run, run in another profile than ``laptop``, or
missing a figure would be published as it is, silently. These checks stop that.
Refresh a notebook's outputs with ``make chapter NB=book/NN_name.ipynb``
(``tools/chapters.py``, which records the run in the notebook's metadata).
"""
from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
_spec = importlib.util.spec_from_file_location("chapters_tool", ROOT / "tools" / "chapters.py")
chapters_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chapters_tool)

# A code cell that draws: matplotlib calls or the package's plotting helpers.
DRAWS = re.compile(r"\bplt\.(subplots|figure|bar|barh|plot|imshow|scatter|hist)\(|"
                   r"\bplots\.(plot|show)_\w+\(|\bax\w*\.(bar|barh|plot|imshow|scatter|hist)\(")


def drawing_cells(nb) -> list[int]:
    """The code cells that draw when they run: a drawing call in their own top-level code,
    or a call of a function an earlier cell defined to draw. A cell that only defines such a
    function draws nothing itself."""
    drawers, found = set(), []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = "\n".join(line for line in source(cell).splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = None
        defined = [node for node in (tree.body if tree else []) if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        drawers |= {node.name for node in defined if DRAWS.search(ast.get_source_segment(text, node) or "")}
        top = "\n".join(ast.get_source_segment(text, node) or "" for node in tree.body
                        if node not in defined) if tree else text
        calls = re.compile(r"\b(" + "|".join(map(re.escape, sorted(drawers))) + r")\(") if drawers else None
        if DRAWS.search(top) or (calls and calls.search(top)):
            found.append(i)
    return found


def book_notebooks() -> list[Path]:
    found = []
    for path in sorted(BOOK.rglob("*.ipynb")):
        parts = path.relative_to(BOOK).parts
        if any(p.startswith("_build") or p == ".ipynb_checkpoints" for p in parts):
            continue
        found.append(path)
    return found


NOTEBOOKS = book_notebooks()


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def describe(index: int, cell: dict) -> str:
    first = next((l for l in source(cell).splitlines() if l.strip()), "")
    return f"cell {index} ({first[:60]!r})"


def first(items: list[str], n: int = 5) -> str:
    shown = "; ".join(items[:n])
    return shown + (f"; ... ({len(items)} in all)" if len(items) > n else "")


def test_book_has_notebooks():
    assert NOTEBOOKS, f"no notebooks found under {BOOK}: the book would have no chapters"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_notebook_has_clean_stored_outputs(path: Path):
    name = path.relative_to(ROOT).as_posix()
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code" and source(c).strip()]
    assert code, f"{name}: has no code cells"

    problems = []
    not_run = [describe(i, c) for i, c in code if c.get("execution_count") is None]
    if not_run:
        problems.append(f"code cells never executed (execution_count is empty): {first(not_run)}")
    counts = [c.get("execution_count") for _, c in code]
    expected = list(range(1, len(code) + 1))
    if not not_run and counts != expected:
        bad = [f"{describe(i, c)} has {c.get('execution_count')}, expected {n}"
               for n, (i, c) in zip(expected, code) if c.get("execution_count") != n]
        problems.append("execution counts are not 1..n in order (run the notebook top to bottom "
                        f"in a fresh kernel): {first(bad)}")
    for i, c in code:
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"{describe(i, c)} stored an error: {out.get('ename')}: {out.get('evalue')}")
    if not any(c.get("outputs") for _, c in code):
        problems.append("no cell has any output: the chapter would render as code only")

    assert not problems, (f"{name}: stored outputs are not publishable; refresh them with "
                          f"`make chapter NB={name}`:\n  " + "\n  ".join(problems))


def stored_run_problems(nb) -> list[str]:
    """What is wrong with a notebook's record of its stored run (empty: nothing)."""
    record = nb.metadata.get("hintlearn")
    if record is None:
        return ["no record of its stored run in metadata.hintlearn: it was not executed with "
                "tools/chapters.py"]
    problems = []
    if record.get("profile") != chapters_tool.STORED_PROFILE:
        problems.append(f"stored from the {record.get('profile')!r} profile, not "
                        f"{chapters_tool.STORED_PROFILE!r}")
    elif record.get("profile_settings") != chapters_tool.profile_settings():
        problems.append(f"stored with the {chapters_tool.STORED_PROFILE} profile's settings "
                        f"{record.get('profile_settings')}, but the package now defines "
                        f"{chapters_tool.profile_settings()}")
    if record.get("code_sha256") != chapters_tool.code_fingerprint(nb):
        problems.append("its code cells were edited after the stored run")
    for i in drawing_cells(nb):
        cell = nb.cells[i]
        if not any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])):
            problems.append(f"{describe(i, cell)} draws a figure but stored none")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_stored_run_is_of_this_code_in_the_laptop_profile_with_its_figures(path: Path):
    name = path.relative_to(ROOT).as_posix()
    problems = stored_run_problems(nbformat.read(path, as_version=4))
    assert not problems, (f"{name}: the stored run does not match the chapter; re-execute it with "
                          f"`make chapter NB={name}`:\n  " + "\n  ".join(problems))


def test_a_stale_chapter_is_caught():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    assert not stored_run_problems(nb)
    edited = nbformat.from_dict(json.loads(json.dumps(nb)))
    code = next(c for c in edited.cells if c.cell_type == "code" and c.source.strip())
    code.source += "\n# edited"
    assert any("edited after" in p for p in stored_run_problems(edited))
    shorter = nbformat.from_dict(json.loads(json.dumps(nb)))
    shorter.metadata["hintlearn"]["profile_settings"]["epochs"] += 1
    assert any("the package now defines" in p for p in stored_run_problems(shorter))
    other = nbformat.from_dict(json.loads(json.dumps(nb)))
    other.metadata["hintlearn"]["profile"] = "quick"
    assert any("'quick' profile" in p for p in stored_run_problems(other))
    figureless = nbformat.from_dict(json.loads(json.dumps(nb)))
    drawing = [figureless.cells[i] for i in drawing_cells(figureless)]
    assert drawing, "chapter 1 draws figures"
    drawing[0].outputs = [o for o in drawing[0].outputs if "image/png" not in o.get("data", {})]
    assert any("draws a figure but stored none" in p for p in stored_run_problems(figureless))


def test_a_cell_drawing_through_a_helper_of_an_earlier_cell_must_store_its_figure():
    nb = nbformat.read(BOOK / "04_attention_transfer.ipynb", as_version=4)
    helper = next(i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and source(c).startswith("def attention_grid("))
    assert helper not in drawing_cells(nb)  # it only defines the drawing
    call = next(i for i in drawing_cells(nb) if i > helper and "attention_grid(" in source(nb.cells[i]))
    nb.cells[call].outputs = [o for o in nb.cells[call].outputs if "image/png" not in o.get("data", {})]
    assert any("draws a figure but stored none" in p for p in stored_run_problems(nb))


PAGE_WIDTH = 79  # characters of a code line the page shows without scrolling sideways


SCREEN_LINES = 25  # lines of a code cell the page shows on one screen


def code_that_does_not_fit(nb) -> list[str]:
    """'cell i, line j (n chars)' for every code line wider than the page, and
    'cell i (n lines)' for every code cell longer than a screen."""
    found = []
    for i, cell in enumerate(nb.cells):
        lines = source(cell).splitlines() if cell.cell_type == "code" else []
        found += [f"cell {i}, line {j} ({len(line)} chars): {line.strip()[:40]!r}"
                  for j, line in enumerate(lines, 1) if len(line) > PAGE_WIDTH]
        if len(lines) > SCREEN_LINES:
            found.append(f"cell {i} ({len(lines)} lines): {source(cell).strip()[:40]!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_code_fits_the_page(path: Path):
    found = code_that_does_not_fit(nbformat.read(path, as_version=4))
    assert not found, (f"{path.relative_to(ROOT)}: code lines wider than {PAGE_WIDTH} characters scroll "
                       f"sideways; cells longer than {SCREEN_LINES} lines do not fit a screen. Wrap the "
                       f"lines, split the cells with a sentence of prose between the parts:\n  "
                       + "\n  ".join(found))


def test_a_long_code_line_and_a_long_cell_are_caught():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and c.source.strip())
    assert not code_that_does_not_fit(nb)
    code.source += "\n" + "x = 1  # " + "a" * PAGE_WIDTH
    assert [p for p in code_that_does_not_fit(nb) if "chars" in p]
    code.source += "\n" * SCREEN_LINES + "x = 1"
    assert [p for p in code_that_does_not_fit(nb) if "lines)" in p]


def figures_without_alt_text(nb) -> list[str]:
    """Every cell that stores a figure but gives it no descriptive alt text
    (``metadata.mystnb.image.alt``, which myst-nb writes into the page's ``<img>``)."""
    missing = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])):
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            if len(alt.split()) < 6:
                missing.append(f"{describe(i, cell)}: alt text {alt!r}")
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_every_figure_has_a_descriptive_alt_text(path: Path):
    missing = figures_without_alt_text(nbformat.read(path, as_version=4))
    assert not missing, (f"{path.relative_to(ROOT)}: a screen reader gets only the file name of these "
                         "figures; describe each in its cell's metadata, "
                         '{"mystnb": {"image": {"alt": "..."}}}:\n  ' + "\n  ".join(missing))


def test_a_figure_without_alt_text_is_caught():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    drawn = next(c for c in nb.cells if c.cell_type == "code"
                 and any("image/png" in o.get("data", {}) for o in c.get("outputs", [])))
    drawn.metadata.pop("mystnb", None)
    assert figures_without_alt_text(nb)


# An experiment exercise: one that asks for training runs, with bench options
# ("--methods ...") or at seeds it names ("at seeds 0, 1 and 2").
EXERCISE = re.compile(r"`{3,}\{exercise\}[^\n]*\n:label: (\S+)\n(.*?)\n`{3,}", re.S)
GLUE_TEXT = re.compile(r"\{glue:text\}`(\w+)")
GLUE_BLOCK = re.compile(r"```\{glue\} (\w+)")
SEEDS = re.compile(r"\bseeds \d")


def glued_names(nb) -> set[str]:
    """The names a notebook's stored outputs hold for the page (myst-nb's glue)."""
    return {output.get("metadata", {}).get("scrapbook", {}).get("name")
            for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])} - {None}


def experiment_exercise_problems(nb) -> list[str]:
    """Each experiment exercise must quote its run time and have a solution that shows
    the measured outcome, both glued from a stored output (not typed in)."""
    markdown = "\n\n".join(source(c) for c in nb.cells if c.cell_type == "markdown")
    glued = glued_names(nb)
    problems = []
    for label, text in EXERCISE.findall(markdown):
        if "--methods" not in text and not SEEDS.search(text):
            continue
        times = GLUE_TEXT.findall(text)
        if not times or not set(times) <= glued:
            problems.append(f"{label}: its run time should be quoted from a stored output "
                            f"({{glue:text}}`name`), found {times or 'none'}; glued: {sorted(glued)}")
        start = markdown.find(f"{{solution}} {label}\n")
        solution = markdown[start:markdown.find("\n````", start)] if start >= 0 else ""
        outcomes = GLUE_BLOCK.findall(solution)
        if not outcomes or not set(outcomes) <= glued:
            problems.append(f"{label}: its solution should show the measured outcome "
                            f"(```{{glue}} name``` of a stored output), found {outcomes or 'none'}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.relative_to(ROOT).as_posix() for p in NOTEBOOKS])
def test_every_experiment_exercise_quotes_its_run_time_and_shows_its_measured_outcome(path: Path):
    problems = experiment_exercise_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_an_experiment_exercise_without_a_stored_outcome_is_caught():
    nb = nbformat.read(BOOK / "03_fitnets.ipynb", as_version=4)
    assert not experiment_exercise_problems(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{solution} ex-hint-stage" in source(cell):
            cell.source = source(cell).replace("```{glue} hint_stage_outcome\n```", "62.5 %")
    assert any("ex-hint-stage: its solution" in p for p in experiment_exercise_problems(nb))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    assert any("ex-hint-stage: its run time" in p for p in experiment_exercise_problems(nb))


def test_an_experiment_exercise_run_by_function_arguments_is_held_to_the_same_rule():
    nb = nbformat.read(BOOK / "09_your_own_models.ipynb", as_version=4)
    assert not experiment_exercise_problems(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    problems = experiment_exercise_problems(nb)
    assert any("ex-own-at: its run time" in p for p in problems)
    assert any("ex-own-at: its solution" in p for p in problems)
