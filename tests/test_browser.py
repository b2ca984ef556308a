"""Every page of a fresh build as a reader sees it, in headless Chromium (tools/pages.py).

At a 1280-px window: math typeset and no raw TeX left (collapsed solutions included),
figures loaded with descriptive alt texts, nothing scrolling sideways, no numbers touching
in a table row, no request leaving the folder, headings in order, no serious or
critical axe-core violation, the launch and download buttons on notebook pages (none
in the learner edition), and the search page finding a word offline.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import pages  # noqa: E402  (tools/ is not a package)

NOTEBOOKS = {p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "book").glob("*.ipynb")}


def build(out: Path, *options: str) -> Path:
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jupyter_book), "build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going", *options]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"`{' '.join(cmd)}` failed:\n{(result.stdout + result.stderr)[-4000:]}"
    return out / "_build" / "html"


def report_text(report: dict[str, list[str]]) -> str:
    return "\n".join(f"{page}:\n    " + "\n    ".join(problems) for page, problems in report.items())


def test_every_page_of_the_book_reads_well_in_a_browser(tmp_path):
    report = pages.check_site(build(tmp_path / "published"), NOTEBOOKS)
    assert not report, "pages as a reader sees them (python tools/pages.py _build/html):\n" + report_text(report)


def test_every_page_of_the_learner_edition_reads_well_without_launch_buttons(tmp_path):
    html = build(tmp_path / "learner", "--config", str(ROOT / "_config_learner.yml"))
    report = pages.check_site(html, NOTEBOOKS, learner=True)
    assert not report, "learner edition pages:\n" + report_text(report)


BROKEN_PAGE = """<!DOCTYPE html><html lang="en"><head><title>Broken</title>
<script>window.MathJax = undefined;</script></head><body><main><article>
<h1>Broken page</h1><h3>A skipped level</h3>
<p>Some <span class="math">\\(x^2\\)</span> raw math.</p>
<div class="highlight"><pre style="width: 300px; overflow-x: auto">{long}</pre></div>
<img src="_images/0123456789abcdef0123.png" alt="_images/0123456789abcdef0123.png">
<img src="https://example.invalid/far.png" alt="a picture of a cat on a warm windowsill">
</article></main></body></html>"""


def test_the_checks_catch_a_broken_page(tmp_path):
    site = tmp_path / "site"
    (site / "_images").mkdir(parents=True)
    (site / "broken.html").write_text(BROKEN_PAGE.format(long="x = 1  # " + "a" * 200))
    (site / "search.html").write_text("<html><body><div id='search-results'>did not match</div></body></html>")
    report = pages.check_site(site, notebooks={"broken"})
    problems = "\n".join(report["broken"])
    for expected in ("math not typeset", "image did not load: _images/0123456789abcdef0123.png",
                     "has no descriptive alt text", "scrolls sideways", "h3 'A skipped level' follows an h1",
                     "request leaves the folder: https://example.invalid/far.png", "no Colab launch button"):
        assert expected in problems, f"the checks missed {expected!r}; they found:\n{problems}"
    assert report["search"] == ["the search page finds nothing for 'distillation'"]


# Raw TeX where a reader sees it and where a collapsed solution keeps it; tables whose
# numbers touch (no padding) and whose numbers do not. Code, pre and words are no TeX.
TEX_AND_TABLES_PAGE = r"""<!DOCTYPE html><html lang="en"><head><title>TeX and tables</title></head>
<body><main><article><h1>TeX and tables</h1>
<ul><li><p>\frac{Q_T^j}{\lVert Q_T^j \rVert_2} a list item that was half an equation</p></li></ul>
<p>Inline dollars $x^2$ left as they were, and <code>$HINTLEARN_CACHE</code> in code.</p>
<div class="solution dropdown" style="display: none"><p>Hidden: \(\beta\) never typeset.</p></div>
<details><summary>Closed</summary><p>Q = \mathrm{vec}(A) inside a closed details.</p></details>
<pre>y = r"\frac{a}{b}"  # code may hold TeX</pre>
<table style="border-collapse: collapse"><tr><th style="padding: 0">sd</th><th style="padding: 0">Δ</th></tr>
<tr><td style="padding: 0">0.64</td><td style="padding: 0">18.13</td><td style="padding: 0">-4.05</td>
<td style="padding: 0">clearly</td><td style="padding: 0">5</td></tr></table>
<table><tr><td style="padding: 0 0.5em">0.66</td><td style="padding: 0 0.5em">24.62</td></tr></table>
</article></main></body></html>"""


def test_the_checks_catch_raw_tex_anywhere_and_numbers_that_touch(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "tex.html").write_text(TEX_AND_TABLES_PAGE, encoding="utf-8")
    (site / "search.html").write_text("<html><body><div id='search-results'>did not match</div></body></html>")
    problems = pages.check_site(site, notebooks=set()).get("tex", [])
    raw = [p for p in problems if p.startswith("raw TeX")]
    touching = [p for p in problems if p.startswith("numbers touch")]
    for expected in (r"\frac{Q_T^j}", "$x^2$", r"\(\beta\)", r"\mathrm{vec}"):
        assert any(repr(expected)[1:-1] in p for p in raw), (
            f"the checks missed raw TeX {expected!r}; they found:\n{problems}")
    assert len(raw) == 4, f"code, pre or plain words read as TeX:\n{raw}"
    assert len(touching) == 2 and '"0.64" | "18.13"' in touching[0] and '"18.13" | "-4.05"' in touching[1], (
        f"numbers in neighbouring cells: only the unpadded pairs touch:\n{touching}")


def test_no_chromium_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HINTLEARN_CHROMIUM", str(tmp_path / "no-chromium"))
    (tmp_path / "site").mkdir()
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        pages.check_site(tmp_path / "site", set())
