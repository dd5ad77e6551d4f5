"""The package's layering (shared/DESIGN.md): no import cycle, and no module imports a layer above it.

Every ``import`` counts, including those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tabular_suite"

#: Rank of each part of the package, bottom to top: a module may import its own part and parts
#: of a lower rank only. Parts of equal rank are independent of each other (the model families).
RANKS = {
    "_version": 0,
    "core": 1,
    "data": 2,
    "nn": 2,
    "datasets": 3,
    "training": 3,
    "tracking": 4,
    "tabular": 5,
    "incontext": 5,
    "recsys": 5,
    "compare": 6,
    "batch": 6,  # chunked predict/evaluate of files
    "__init__": 7,  # the package root: the public API, imports everything
    "cli": 8,  # the CLI uses the public API
}
#: MLflow runs this file by path when it loads a logged model ("models from code"); no module
#: of the package imports it, so it sits at the top with the CLI as an entry point.
ENTRY_POINTS = {"tabular_suite.tracking.pyfunc_model"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    for path in sorted((ROOT / "cli").rglob("*.py")):  # installed as tabular_suite.cli
        parts = ("tabular_suite", "cli", *path.relative_to(ROOT / "cli").with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The package's modules that ``name`` imports (anywhere in the file)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import submodule` depends on the submodule; `from pkg import name` on pkg.
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] == "tabular_suite" and t in modules)
    found.discard(name)
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_part_has_a_rank(graph):
    assert {_part(m) for m in graph} <= set(RANKS), "add new top-level parts to RANKS (and to DESIGN.md)"


def test_no_module_imports_a_layer_above_or_beside_it(graph):
    wrong = []
    for module, imported in graph.items():
        if module in ENTRY_POINTS:
            continue
        for target in imported:
            mine, theirs = _part(module), _part(target)
            if mine != theirs and RANKS[theirs] >= RANKS[mine]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle(graph):
    assert _cycles(graph) == []


def test_the_checks_catch_a_cycle_and_an_upward_import():
    """The checks themselves can fail: a planted cycle and an upward import are found."""
    planted = {"tabular_suite.core.a": {"tabular_suite.tabular.b"}, "tabular_suite.tabular.b": {"tabular_suite.core.a"}}
    assert _cycles(planted) == [["tabular_suite.core.a", "tabular_suite.tabular.b"]]
    assert RANKS[_part("tabular_suite.tabular.b")] > RANKS[_part("tabular_suite.core.a")]


def test_the_graph_sees_lazy_imports(graph):
    """Imports inside functions count (the cycles this test guards against were lazy ones)."""
    assert "tabular_suite.tracking" in graph["tabular_suite.tabular.base"]


def test_the_readme_lists_the_registered_models():
    """The README's list of models is the registry's (adding a model updates it or fails here)."""
    import re

    import tabular_suite

    text = (ROOT / "README.md").read_text()
    shown = re.search(r"`ts\.list_models\(\)` gives `(\[.*?\])`", text)
    assert shown is not None and ast.literal_eval(shown.group(1)) == tabular_suite.list_models()
