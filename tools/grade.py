"""Grade a whole class: every submission through ``otter run``, into one gradebook.

    make assignments                     # the autograders, into _build_course/
    make grade SUBMISSIONS=submissions   # or: python tools/grade.py submissions

A submission is a notebook (or the zip of the export cell) named as the learner copy
was, ``<assignment>.ipynb``, anywhere under the folder: ``submissions/alice/ch02_...ipynb``.
Its assignment is read from that name and graded with that assignment's autograder
(``_build_course/<assignment>/autograder/<assignment>-autograder_*.zip``). Writes, in the
submissions folder:

* ``gradebook.csv``: one row per submission (``submission``, ``assignment``, the score
  of each question, ``total``, ``possible``);
* ``summary.csv``: per assignment and question, the number of submissions and the mean
  score against the points possible.

``otter run`` exits 0 whatever the score, so the scores are read from each
``results.json``; a submission otter cannot grade gets a row with its error instead.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "_build_course"


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """``(assignment, path)`` of every submission under ``folder``, sorted by path."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".ipynb", ".zip") and path.is_file() and ".graded" not in path.parts \
                and not path.name.startswith("."):
            found.append((path.stem, path))
    return found


def autograder(assignment: str, course: Path = COURSE) -> Path:
    zips = sorted((course / assignment / "autograder").glob(f"{assignment}-autograder_*.zip"))
    if not zips:
        raise SystemExit(f"no autograder for {assignment!r} in {course / assignment / 'autograder'}: "
                         "run `make assignments` first (a submission must keep the learner copy's name)")
    return zips[-1]


def grade_one(zip_path: Path, submission: Path, out: Path) -> dict[str, tuple[float, float]] | str:
    """``{question: (score, possible)}`` of one submission, or otter's error as text."""
    out.mkdir(parents=True, exist_ok=True)
    otter = Path(sys.executable).parent / "otter"
    done = subprocess.run([str(otter), "run", "-a", str(zip_path), "-o", str(out), str(submission)],
                          capture_output=True, text=True, timeout=900)
    results = out / "results.json"
    if done.returncode != 0 or not results.is_file():
        return (done.stdout + done.stderr).strip()[-300:] or f"otter run exited with {done.returncode}"
    tests = json.loads(results.read_text())["tests"]
    return {t["name"]: (float(t["score"]), float(t["max_score"])) for t in tests if "score" in t}


def grade_class(folder: Path, course: Path = COURSE) -> tuple[list[dict], list[dict]]:
    """Grade every submission in ``folder``; write and return (gradebook rows, summary rows)."""
    rows, questions = [], {}
    for assignment, path in submissions(folder):
        scores = grade_one(autograder(assignment, course), path,
                           folder / ".graded" / path.relative_to(folder).with_suffix(""))
        row = {"submission": path.relative_to(folder).as_posix(), "assignment": assignment}
        if isinstance(scores, str):
            row["error"] = scores.replace("\n", " ")[-200:]
        else:
            questions.setdefault(assignment, {}).update({q: p for q, (_, p) in scores.items()})
            row.update({q: s for q, (s, _) in scores.items()})
            row["total"] = sum(s for s, _ in scores.values())
            row["possible"] = sum(p for _, p in scores.values())
        rows.append(row)
    names = sorted({q for qs in questions.values() for q in qs})
    _write(folder / "gradebook.csv", rows, ["submission", "assignment", *names, "total", "possible", "error"])
    summary = []
    for assignment, possible in sorted(questions.items()):
        graded = [r for r in rows if r["assignment"] == assignment and "total" in r]
        for question, points in sorted(possible.items()):
            summary.append({"assignment": assignment, "question": question, "submissions": len(graded),
                            "mean": round(statistics.fmean(r.get(question, 0.0) for r in graded), 2),
                            "possible": points})
    _write(folder / "summary.csv", summary, ["assignment", "question", "submissions", "mean", "possible"])
    return rows, summary


def _write(path: Path, rows: list[dict], fields: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="the folder of submissions")
    parser.add_argument("--course", type=Path, default=COURSE, help="where `make assignments` wrote")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        raise SystemExit(f"{args.submissions} is not a folder of submissions")
    rows, summary = grade_class(args.submissions, args.course)
    for row in rows:
        print(f"{row['submission']}: " + (f"{row['total']:g} / {row['possible']:g}" if "total" in row
                                          else f"not graded ({row['error']})"))
    for line in summary:
        print(f"{line['assignment']} {line['question']}: mean {line['mean']:g} / {line['possible']:g} "
              f"over {line['submissions']}")
    print(f"gradebook: {args.submissions / 'gradebook.csv'}; summary: {args.submissions / 'summary.csv'}")


if __name__ == "__main__":
    main()
