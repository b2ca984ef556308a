"""Show tqdm.auto progress bars in their final state in the HTML book.

A tqdm.auto bar in Jupyter is an ipywidget. Its stored output holds a widget view and a
text/plain fallback captured when the bar was first displayed ("0%| | 0/8"). The book
does not load the widget JavaScript (it would come from CDNs), so it shows the fallback.
The final state of every widget is stored in the notebook's metadata (nbclient and
JupyterLab save it), so this post-transform rewrites the fallback of each tqdm bar
(an HBox of HTML, FloatProgress, HTML) as the text line tqdm would have printed last,
e.g. "epoch: 100%|██████████| 8/8 [00:41<00:00,  5.1s/it]", and drops the output of a
widget closed before the notebook was saved (``leave=False``), as Jupyter shows nothing
for it. It runs before myst-nb picks a mime type (SelectMimeType, priority 4).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
BAR_WIDTH = 10


def _text(value: str) -> str:
    return html.unescape(value).replace("\u2007", " ").replace("\u200b", "")


def tqdm_line(state: dict, model_id: str) -> str | None:
    """The final text of the tqdm bar whose HBox model is ``model_id``, or None."""
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    try:
        left, bar, right = (state[c.removeprefix("IPY_MODEL_")] for c in box["state"]["children"])
    except (KeyError, ValueError):
        return None
    if (left["model_name"], bar["model_name"], right["model_name"]) != ("HTMLModel", "FloatProgressModel", "HTMLModel"):
        return None
    value, top = bar["state"].get("value", 0.0), bar["state"].get("max", 0.0)
    full = int(BAR_WIDTH * value / top) if top else 0
    return f"{_text(left['state']['value'])}|{'█' * full}{' ' * (BAR_WIDTH - full)}|{_text(right['state']['value'])}"


def is_hidden(state: dict, model_id: str) -> bool:
    """Whether the widget was closed or hidden (tqdm hides a finished ``leave=False`` bar)."""
    if model_id not in state:
        return True
    layout = state[model_id].get("state", {}).get("layout", "")
    layout_state = state.get(layout.removeprefix("IPY_MODEL_"), {}).get("state", {})
    return layout_state.get("visibility") == "hidden" or layout_state.get("display") == "none"


class TqdmFinalState(SphinxPostTransform):
    default_priority = 3

    def run(self, **kwargs) -> None:
        path = Path(self.env.doc2path(self.env.docname))
        if path.suffix != ".ipynb":
            return
        metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        state = metadata.get("widgets", {}).get(STATE, {}).get("state", {})
        if not state:
            return
        for bundle in list(self.document.findall(nodes.container)):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            by_mime = {child.get("mime_type"): child for child in bundle.children}
            if VIEW not in by_mime or "text/plain" not in by_mime:
                continue
            match = re.search(r'"model_id":\s*"([^"]+)"', by_mime[VIEW].astext())
            if match and is_hidden(state, match.group(1)):
                # closed before the notebook was saved (tqdm's leave=False): Jupyter shows nothing
                bundle.parent.remove(bundle)
                continue
            line = tqdm_line(state, match.group(1)) if match else None
            blocks = list(by_mime["text/plain"].findall(nodes.literal_block))
            if line is None or not blocks:
                continue
            block = blocks[0]
            block.children = []
            block += nodes.Text(line)
            block.rawsource = line


def setup(app):
    app.add_post_transform(TqdmFinalState)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
