"""The GitHub workflows, checked as far as this machine allows.

Here: the YAML parses, the triggers and permissions are the ones Pages deployment
needs, the artifact is the folder `make book` writes, and every command a step runs
exists here (a Makefile target, a file of the repository, a builder jupyter-book
accepts). Only GitHub can run them; the README says what is checked where.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads a bare `on:` as True
    return data


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def commands(data: dict) -> list[list[str]]:
    """Every command of every `run:` step, split on `&&`, as argument lists."""
    found = []
    for job in data["jobs"].values():
        for step in job.get("steps", []):
            for part in step.get("run", "").split("&&"):
                if part.strip():
                    found.append(shlex.split(part.replace("${{ github.repository }}", "owner/name")))
    return found


def test_the_book_is_published_from_main_with_the_pages_actions():
    book = workflow("book.yml")
    assert book["on"]["push"]["branches"] == ["main"]
    assert book["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    uses = {job: [s.get("uses", "") for s in spec["steps"]] for job, spec in book["jobs"].items()}
    upload = next(s for s in book["jobs"]["build"]["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    book_target = re.search(r"^book:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    assert "jupyter-book build ." in book_target and upload["with"]["path"] == "_build/html"
    assert any("deploy-pages" in u for u in uses["deploy"]) and book["jobs"]["deploy"]["needs"] == "build"
    assert ["make", "book", "TORCH=cpu"] in commands(book)
    assert ["make", "linkcheck", "TORCH=cpu"] in commands(book)


def test_pull_requests_run_the_readme_test_command():
    tests = workflow("tests.yml")
    assert "pull_request" in tests["on"]
    assert ["make", "test", "TORCH=cpu"] in commands(tests)


def test_every_command_a_workflow_runs_exists_here():
    targets = make_targets()
    for name in ("book.yml", "tests.yml"):
        for argv in commands(workflow(name)):
            if argv[0] == "make":
                assert argv[1] in targets, f"{name}: `make {argv[1]}` is not a target of the Makefile"
            elif argv[0].startswith("python"):
                script = argv[argv.index("-m") + 2] if "-m" in argv else argv[1]
                if not script.startswith("-") and "/" in script:
                    assert (ROOT / script).is_file(), f"{name}: {script} does not exist"
            elif argv[0].startswith(".venv/bin/"):
                assert (ROOT / argv[0]).is_file() or (Path(sys.executable).parent / Path(argv[0]).name).is_file(), (
                    f"{name}: {argv[0]} is not installed by `make venv`")
    help_text = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "linkcheck" in help_text, "jupyter-book no longer offers the linkcheck builder"
    assert "linkcheck" in targets
