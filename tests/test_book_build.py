"""The book builds clean, offline, from the notebooks' stored outputs.

One clean Jupyter Book build (warnings are errors) into a temporary folder, then checks
on the HTML: every page of _toc.yml is there, chapters show their figures, no page
loads a script from a CDN (tqdm's ipywidgets output would pull in require.js and the
widget manager), and MathJax comes from the vendored copy in _vendor/.
A build takes a few seconds: the notebooks are rendered, not executed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs")
LOCAL_MATHJAX = "_static/mathjax/tex-mml-chtml.js"
SCRIPT_SRC = re.compile(r"""<script\b[^>]*?\bsrc\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
FIGURE = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["'][^"']*_images/""", re.IGNORECASE)


def toc_files() -> list[str]:
    """Every page of _toc.yml (root, chapters, sections), as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def notebook_pages() -> list[str]:
    return [f for f in toc_files() if (ROOT / f"{f}.ipynb").is_file()]


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    assert jupyter_book.is_file(), f"jupyter-book is not installed next to {sys.executable}"
    cmd = [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"`{' '.join(cmd)}` failed with rc {result.returncode}:\n{log}"
    return out / "_build" / "html"


def html_files(html: Path) -> list[Path]:
    return sorted(html.rglob("*.html"))


def test_every_toc_page_is_built(html: Path):
    assert (html / "index.html").is_file(), f"no index.html in {html}"
    missing = [f"{f}.html" for f in toc_files() if not (html / f"{f}.html").is_file()]
    assert not missing, f"pages listed in _toc.yml but not built: {missing}"
    assert (html / "searchindex.js").is_file(), "searchindex.js is missing: search would not work"


def test_no_script_from_a_cdn(html: Path):
    offenders = []
    for page in html_files(html):
        for src in SCRIPT_SRC.findall(page.read_text(encoding="utf-8")):
            if any(host in src for host in CDN_HOSTS):
                offenders.append(f"{page.relative_to(html)}: {src}")
    assert not offenders, ("pages load scripts from a CDN (the book must work offline; for ipywidgets "
                           "see nb_mime_priority_overrides / nb_ipywidgets_js in _config.yml):\n  "
                           + "\n  ".join(offenders))


def test_mathjax_is_the_vendored_copy(html: Path):
    assert (html / LOCAL_MATHJAX).is_file(), f"{LOCAL_MATHJAX} was not copied from _vendor/ into the build"
    with_math, remote = [], []
    for page in html_files(html):
        for src in SCRIPT_SRC.findall(page.read_text(encoding="utf-8")):
            if "mathjax" in src.lower():
                (with_math if LOCAL_MATHJAX in src else remote).append(f"{page.relative_to(html)}: {src}")
    assert not remote, "MathJax is loaded from somewhere other than the vendored copy:\n  " + "\n  ".join(remote)
    intro = html / f"{toc_files()[0]}.html"
    assert any(LOCAL_MATHJAX in src for src in SCRIPT_SRC.findall(intro.read_text(encoding="utf-8"))), (
        f"{intro.relative_to(html)} has an equation but does not load {LOCAL_MATHJAX}")


@pytest.mark.parametrize("page", notebook_pages())
def test_chapter_shows_figures(html: Path, page: str):
    text = (html / f"{page}.html").read_text(encoding="utf-8")
    assert FIGURE.search(text), (f"{page}.html shows no figure (<img src=.../_images/...>): "
                                 f"are the outputs stored in {page}.ipynb?")


def test_toc_lists_notebook_chapters():
    assert notebook_pages(), f"_toc.yml lists no notebook chapter that exists: {toc_files()}"
