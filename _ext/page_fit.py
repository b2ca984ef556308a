"""Pages that fit and read for everyone (checked by ``tools/pages.py`` in a real browser).

* ``hintlearn.css`` (in ``_vendor/``, the static path): output lines wrap instead of
  scrolling sideways, and links inside tinted boxes keep a 4.5:1 contrast.
* Citation lists: docutils marks them ``role="list"`` although their entries are not
  list items, which screen readers (and axe's ``aria-required-children``) reject; the
  role is dropped, the entries keep ``role="doc-biblioentry"``.
"""
from __future__ import annotations

CITATION_LIST = '<div role="list" class="citation-list">'


def _drop_list_role(app, pagename, templatename, context, doctree):
    if "body" in context and CITATION_LIST in context["body"]:
        context["body"] = context["body"].replace(CITATION_LIST, '<div class="citation-list">')


def setup(app):
    app.add_css_file("hintlearn.css")
    app.connect("html-page-context", _drop_list_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
