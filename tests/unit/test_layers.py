"""The layout keeps its promises: no import cycle inside ``app/``, no layer imports the one above it.

Every import counts, also one inside a function (an import moved into a function to dodge a
cycle is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"

# lower layers first; a module may import its own layer and the layers before it
LAYERS = [
    ("app.settings", "app.schemas", "app.topics"),
    ("app.core",),
    ("app.index",),
    ("app.classify", "app.console"),  # app.console: the console's pure view-model
    ("app.service",),
    ("app.devtools", "app.cli"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for p in APP.rglob("*.py"):
        parts = p.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("app")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app") and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return {m for m in found if m in modules and m != name and m != "app"}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_inside_app():
    assert _cycles(_graph()) == []


def test_no_layer_imports_a_layer_above_it():
    upward = [(m, dep) for m, deps in _graph().items() for dep in deps if _layer(dep) > _layer(m)]
    assert upward == []


def test_schemas_do_not_import_the_core():
    assert [(m, d) for m, deps in _graph().items() if m.startswith("app.schemas")
            for d in deps if not d.startswith("app.schemas")] == []
