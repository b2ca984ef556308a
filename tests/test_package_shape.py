"""The package's shape: no import cycle, and each layer imports only the layers above it
(STYLE.md): the running layer never imports the teaching layer."""
import ast
from pathlib import Path

import hintlearn_mini

PACKAGE = Path(hintlearn_mini.__file__).parent
# The teaching layer: what only chapters use (tables, figures, exercises, the lesson helpers).
TEACHING = {"exercises", "lesson", "plots", "probes", "published", "tables"}
# The running layer: training, the run cache, the benchmark.
RUNNING = {"bench", "profiles", "runs", "teacher_outputs", "train", "zoo"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its code (functions and
    ``TYPE_CHECKING`` blocks too), as dotted names relative to the package."""
    here = _module_name(path).split(".") if _module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            if not node.module:  # from . import recipes
                found |= {".".join(base + [alias.name]) for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("hintlearn_mini.") for a in node.names if a.name.startswith("hintlearn_mini.")}
    modules = _graph_nodes()
    return {name for name in found if name in modules and name != _module_name(path)}


def _graph_nodes() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _graph() -> dict[str, set[str]]:
    return {name: _imports(path) for name, path in _graph_nodes().items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a path that comes back to its start), or None."""
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_package_has_no_import_cycle():
    graph = _graph()
    # a package's __init__ re-exports its own modules: the edge from a module to its own
    # package's __init__ is the only way back, and Python allows it; nothing else may close a loop
    graph = {name: {t for t in targets if not name.startswith(t + ".") or t == ""} for name, targets in graph.items()}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"data": {"views"}, "views": {"data"}}) == ["data", "views", "data"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_running_layer_imports_nothing_from_the_teaching_layer():
    wrong = {(name, target) for name, targets in _graph().items() if _top(name) in RUNNING
             for target in targets if _top(target) in TEACHING}
    assert not wrong, f"the running layer imports the teaching layer: {sorted(wrong)}"


def test_every_module_is_placed_in_a_layer_or_below_them():
    below = {"", "checkpoints", "data", "distributed", "hardware", "losses", "methods", "models", "stats", "views",
             "your_own_models"}
    unplaced = {_top(name) for name in _graph_nodes()} - TEACHING - RUNNING - below
    assert not unplaced, f"place {sorted(unplaced)} in a layer of tests/test_package_shape.py"
