"""The notebooks in book/ carry the outputs the book shows.

The book is built with ``execute_notebooks: "off"``: it renders the outputs stored in
each notebook and never runs it. A notebook saved without outputs, run out of order,
or saved with an error would be published as it is, silently. These checks stop that.
Refresh a notebook's outputs with ``.venv/bin/jupyter execute --inplace book/NN_name.ipynb``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


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
                          f"`.venv/bin/jupyter execute --inplace {name}`:\n  " + "\n  ".join(problems))
