"""Every page of a built book as a reader sees it: headless Chromium at a 1280-px window.

    python tools/pages.py _build/html                  # the published book
    python tools/pages.py _build_learner/_build/html --learner

The pages are served from their folder on a local port (as a web host would serve
them), opened one by one, and checked after MathJax has typeset them:

* math typeset: every ``.math`` element holds MathJax's output, and no raw TeX is left
  anywhere in the page's text (hidden solutions included);
* tables: numbers in neighbouring cells of a row never touch (a gap of at least
  ``MIN_CELL_GAP_PX`` between their text);
* figures: every image loaded, and its alt text describes it (not a file name);
* nothing scrolls sideways: no code block, output or table wider than its box;
* no request leaves the folder (the book works offline);
* headings in order (one h1, no level skipped);
* buttons: launch (Colab, Binder) and download on notebook pages of the published book,
  none of them in the learner edition;
* axe-core (``axe-playwright-python``): no violation of impact "serious" or "critical";
* the search page finds a word of the book, offline.

Chromium: ``$HINTLEARN_CHROMIUM`` (a path, or ``playwright`` for Playwright's own
download), else a ``chromium`` on the PATH (Debian's), else Playwright's own; see
``tools/chromium.py``, which `make test` runs first to install one where none is found.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ is not a package
import chromium  # noqa: E402  (which Chromium to drive, and how to get one)

WINDOW = {"width": 1280, "height": 900}
SERIOUS = ("serious", "critical")
FILE_NAME_ALT = re.compile(r"(^$|\.(png|jpe?g|svg|gif)$|^[0-9a-f]{16,})", re.IGNORECASE)
SEARCH_WORD = "distillation"
REDIRECT = re.compile(r"<meta[^>]+http-equiv=[\"']refresh", re.IGNORECASE)  # index.html -> the root page

# Measured in the page: (selector, problem) for boxes whose content is wider than the box.
SIDEWAYS_JS = """() => {
  const boxes = document.querySelectorAll(
    'article div.highlight pre, article div.cell_output pre, article div.output pre, '
    + 'article div.cell_output, article div.output, article table, article div.math');
  const wide = [];
  for (const el of boxes) {
    if (el.scrollWidth > el.clientWidth + 1) {
      const text = (el.innerText || '').split('\\n').sort((a, b) => b.length - a.length)[0] || '';
      wide.push(`${el.tagName.toLowerCase()}.${el.className || '-'}: ${el.scrollWidth}px in `
                + `${el.clientWidth}px: "${text.slice(0, 60)}"`);
    }
  }
  return wide;
}"""

MATH_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const raw = [];
  for (const el of document.querySelectorAll('article .math')) {
    if (!el.querySelector('mjx-container') && !el.closest('mjx-container')) {
      raw.push(el.textContent.trim().slice(0, 60));
    }
  }
  return raw;
}"""

# TeX that MathJax left as text, anywhere in the page's DOM (collapsed solutions too):
# $...$ pairs, \commands and \( \) \[ \] delimiters, outside code and typeset math. The
# .math elements are MATH_JS's; this finds what never became one (a line of inline math
# that starts with "- " turns into a list item and loses its dollars).
RAW_TEX_JS = r"""async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const tex = /\$\$?[^$\s](?:[^$]*[^$\s])?\$|\\[A-Za-z]{2,}|\\[()[\]]/;
  const skip = 'script, style, noscript, template, textarea, code, pre, kbd, samp, '
    + 'mjx-container, .math, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const match = tex.exec(node.data);
    if (match && !node.parentElement.closest(skip)) {
      const start = Math.max(0, match.index - 20);
      raw.push(node.data.slice(start, start + 60).replace(/\s+/g, ' ').trim());
    }
  }
  return raw;
}"""

# Numbers in neighbouring cells of a table row whose text boxes (measured, not their
# cells) are closer than `minGap` px: "0.64" beside "18.13" reads "0.6418.13".
TOUCHING_JS = """(minGap) => {
  const text = (cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return range.getBoundingClientRect();
  };
  const touching = [];
  for (const row of document.querySelectorAll('article tr')) {
    const cells = Array.from(row.children).filter(c => c.matches('td, th'));
    for (let i = 0; i + 1 < cells.length; i++) {
      const left = cells[i].textContent.trim(), right = cells[i + 1].textContent.trim();
      if (!/[0-9]$/.test(left) || !/^[-−+]?[0-9]/.test(right)) continue;
      const a = text(cells[i]), b = text(cells[i + 1]);
      if (a.width === 0 || b.width === 0) continue;  // not laid out (a collapsed block)
      const gap = b.left - a.right;
      if (gap < minGap) touching.push(`"${left}" | "${right}" ${gap.toFixed(1)}px apart`);
    }
  }
  return touching;
}"""
MIN_CELL_GAP_PX = 6  # about a space and a half of the output tables' text

IMAGES_JS = """() => Array.from(document.querySelectorAll('article img')).map(img => ({
  src: img.getAttribute('src'), alt: img.getAttribute('alt') || '',
  loaded: img.complete && img.naturalWidth > 0}))"""

HEADINGS_JS = """() => Array.from(document.querySelectorAll('article h1, article h2, article h3, '
  + 'article h4, article h5, article h6')).map(h => [Number(h.tagName[1]), h.innerText.trim()])"""


@contextmanager
def serve(folder: Path):
    """Serve ``folder`` on a free local port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per file would bury the report
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a page closed mid-download: harmless
        pass


def heading_problems(headings: list[list]) -> list[str]:
    """One h1 first, and no level skipped on the way down (h2 -> h4)."""
    problems = []
    levels = [level for level, _ in headings]
    if levels.count(1) != 1 or (levels and levels[0] != 1):
        problems.append(f"headings: expected one h1 first, got levels {levels[:8]}")
    for (before, _), (level, text) in zip(headings, headings[1:]):
        if level > before + 1:
            problems.append(f"heading h{level} {text[:40]!r} follows an h{before}: a level is skipped")
    return problems


def page_problems(page, url: str, base: str, notebook: bool, learner: bool, axe) -> list[str]:
    """Everything wrong with one page, as sentences (empty: nothing)."""
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((base, "data:", "blob:", "about:")) else None)
    page.goto(url, wait_until="load")
    problems = [f"math not typeset: {raw!r}" for raw in page.evaluate(MATH_JS)]
    problems += [f"raw TeX in the page: {raw!r}" for raw in page.evaluate(RAW_TEX_JS)]
    problems += [f"numbers touch in a table row: {pair}"
                 for pair in page.evaluate(TOUCHING_JS, MIN_CELL_GAP_PX)]
    for image in page.evaluate(IMAGES_JS):
        if not image["loaded"]:
            problems.append(f"image did not load: {image['src']}")
        if FILE_NAME_ALT.search(Path(image["alt"]).name) or len(image["alt"]) < 12:
            problems.append(f"image {Path(image['src']).name} has no descriptive alt text "
                            f"(alt={image['alt']!r}): set metadata.mystnb.image.alt of its cell")
    problems += [f"scrolls sideways: {wide}" for wide in page.evaluate(SIDEWAYS_JS)]
    problems += heading_problems(page.evaluate(HEADINGS_JS))
    problems += [f"request leaves the folder: {u}" for u in outside]
    if notebook:
        html = page.content()
        buttons = {"Colab launch": "colab.research.google.com" in html,
                   "Binder launch": "mybinder.org" in html,
                   "download": ".ipynb" in html and "download" in html.lower()}
        for name, present in buttons.items():
            if present and learner:
                problems.append(f"the learner edition shows the {name} button")
            if not present and not learner:
                problems.append(f"no {name} button")
    for violation in axe.run(page).response["violations"]:
        if violation["impact"] in SERIOUS:
            targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            problems.append(f"axe {violation['impact']}: {violation['id']} ({violation['help']}) "
                            f"at {'; '.join(targets)}")
    return problems


def search_finds(page, base: str, word: str = SEARCH_WORD) -> int:
    """How many results the book's own search page lists for ``word``."""
    page.goto(f"{base}search.html?q={word}", wait_until="load")
    page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0 || "
                           "(document.querySelector('#search-results') || {}).innerText?.includes('did not')",
                           timeout=30_000)
    return page.evaluate("() => document.querySelectorAll('#search-results li').length")


def check_site(html: Path, notebooks: set[str], learner: bool = False) -> dict[str, list[str]]:
    """``{page: problems}`` for every page of the built book in ``html`` (pages without
    problems are left out; ``"search"`` reports the search page). ``notebooks``: the
    pages (paths without suffix) built from notebooks."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    pages = sorted(p.relative_to(html).with_suffix("").as_posix() for p in html.rglob("*.html")
                   if not p.relative_to(html).parts[0].startswith(("_", "."))
                   and p.name not in ("search.html", "genindex.html")
                   and not REDIRECT.search(p.read_text(encoding="utf-8")[:2000]))
    report: dict[str, list[str]] = {}
    axe = Axe()
    with serve(html) as base, sync_playwright() as playwright:
        try:
            browser = chromium.launch(playwright)
        except Exception as error:  # playwright's Error: no browser where it looked
            raise RuntimeError(f"{chromium.NO_CHROMIUM} ({str(error).splitlines()[0][:200]}). "
                               f"{chromium.HOW_TO_GET_ONE}") from error
        try:
            for name in pages:
                page = browser.new_page(viewport=WINDOW)
                problems = page_problems(page, f"{base}{name}.html", base, name in notebooks, learner, axe)
                page.close()
                if problems:
                    report[name] = problems
            page = browser.new_page(viewport=WINDOW)
            if search_finds(page, base) == 0:
                report["search"] = [f"the search page finds nothing for {SEARCH_WORD!r}"]
            page.close()
        finally:
            browser.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--learner", action="store_true", help="the learner edition: no launch buttons")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    notebooks = {p.relative_to(root).with_suffix("").as_posix() for p in (root / "book").glob("*.ipynb")}
    report = check_site(args.html, notebooks, args.learner)
    for name, problems in report.items():
        print(f"{name}: {len(problems)} problem(s)")
        for problem in problems:
            print(f"  {problem}")
    print(f"{sum(map(len, report.values()))} problems on {len(report)} pages")


if __name__ == "__main__":
    main()
