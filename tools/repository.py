"""One repository URL for the whole book: ``repository.url`` in ``_config.yml``.

The launch and repository buttons read it from there; everything else that names the
repository follows it and is checked against it (``tests/test_repository.py``):

* the Colab cell that opens every chapter (``%pip install ... git+<url>``);
* the learner edition's ``_config_learner.yml``;
* the course's ``otter_config.yml`` (what the grading image installs) and the
  instructor notes.

    python tools/repository.py check           # list what disagrees with _config.yml
    python tools/repository.py set OWNER/NAME  # point everything at another repository

The publish workflow runs ``set ${{ github.repository }}`` before it builds, so a fork
publishes a book whose buttons open the fork.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
URL = re.compile(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?(?=[\s\"'`)\\]|\.git\b|$)")
CONFIG_URL = re.compile(r"(^repository:\n(?:[ \t].*\n)*?[ \t]+url:[ \t]*)(\S+)", re.MULTILINE)


def followers() -> list[Path]:
    """The files whose repository URL must be ``_config.yml``'s."""
    return [*sorted((ROOT / "book").glob("*.ipynb")), ROOT / "book" / "instructor.md",
            ROOT / "_config_learner.yml", ROOT / "course" / "assignments" / "otter_config.yml"]


def configured_url() -> str:
    return yaml.safe_load(CONFIG.read_text())["repository"]["url"].rstrip("/")


def mentions(path: Path) -> list[str]:
    """The repository URLs a follower names: the install URLs (``git+...``) and, in a
    book config, ``repository.url``."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".yml" and path.name.startswith("_config"):
        return [yaml.safe_load(text)["repository"]["url"].rstrip("/")]
    return [m.group(0) for m in URL.finditer(text) if text[max(0, m.start() - 4):m.start()] == "git+"]


def disagreements() -> list[str]:
    """'file: url' for every follower that names another repository, or none at all."""
    url, problems = configured_url(), []
    for path in followers():
        found = mentions(path)
        if not found:
            problems.append(f"{path.relative_to(ROOT)}: names no repository (expected {url})")
        problems += [f"{path.relative_to(ROOT)}: {other} (expected {url})" for other in found if other != url]
    return problems


def set_repository(slug: str) -> str:
    """Point ``_config.yml`` and every follower at ``https://github.com/<slug>``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", slug):
        raise SystemExit(f"expected OWNER/NAME (as GitHub's github.repository), got {slug!r}")
    old, new = configured_url(), f"https://github.com/{slug}"
    for path in [CONFIG, *followers()]:
        text = path.read_text(encoding="utf-8")
        if path.name.startswith("_config"):
            text = CONFIG_URL.sub(lambda m: m.group(1) + new, text, count=1)
        path.write_text(text.replace(f"git+{old}", f"git+{new}"), encoding="utf-8")
    return new


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="list the files that disagree with _config.yml")
    setter = sub.add_parser("set", help="point the book at another repository")
    setter.add_argument("slug", metavar="OWNER/NAME")
    args = parser.parse_args(argv)
    if args.command == "set":
        print(f"repository: {set_repository(args.slug)}")
    problems = disagreements()
    print("\n".join(problems) or f"every file names {configured_url()}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
