"""Package structure: gsseg's modules import each other without circles (counting imports inside
functions too, which would otherwise hide a circle), so do its top-level packages (``gsseg.a`` may
import ``gsseg.b`` or the other way round, not both), and ``gsseg.render`` imports only downward
from ``types`` / ``dispatch`` at its bottom."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "gsseg"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> gsseg modules it imports anywhere in its body (``from pkg import sub`` counts sub and pkg)."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = {d for d in deps if d in paths and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_in_the_package():
    graph = import_graph()
    assert len(graph) > 50
    assert cycles(graph) == []


def test_render_types_and_dispatch_sit_at_the_bottom():
    graph = import_graph()
    render = {m for m in graph if m.startswith("gsseg.render.")}
    for bottom in ("gsseg.render.types", "gsseg.render.dispatch", "gsseg.render.extensions"):
        assert not (graph[bottom] & (render - {"gsseg.render.extensions"})), (
            f"{bottom} imports {graph[bottom] & render}"
        )


def package_of(module: str) -> str:
    """The top-level package a module belongs to: ``gsseg.train.rgb`` -> ``gsseg.train``
    (a top-level module such as ``gsseg.errors`` is its own)."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Top-level package -> the other top-level packages its modules import (any module of each)."""
    packages: dict[str, set[str]] = {}
    for module, deps in graph.items():
        packages.setdefault(package_of(module), set()).update(package_of(d) for d in deps)
    return {p: deps - {p} for p, deps in packages.items()}


def package_edges(graph: dict[str, set[str]], a: str, b: str) -> list[str]:
    """The module imports that make package ``a`` import package ``b`` ("gsseg.a.x -> gsseg.b.y")."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if package_of(m) == a and package_of(d) == b)


def test_package_cycle_finder_sees_circles_the_module_graph_hides():
    # no module imports itself back, but package a imports b (a.x -> b.y) and b imports a (b.z -> a.w)
    modules = {"gsseg.a.x": {"gsseg.b.y"}, "gsseg.b.y": set(), "gsseg.b.z": {"gsseg.a.w"}, "gsseg.a.w": set()}
    assert cycles(modules) == []
    assert cycles(package_graph(modules)) == [["gsseg.a", "gsseg.b"]]
    assert package_edges(modules, "gsseg.b", "gsseg.a") == ["gsseg.b.z -> gsseg.a.w"]
    assert (
        cycles(package_graph({"gsseg.a.x": {"gsseg.b.y"}, "gsseg.b.y": {"gsseg.errors"}, "gsseg.errors": set()})) == []
    )


def test_no_import_circles_between_packages():
    """gsseg's top-level packages import each other in one direction only (the run directory, the
    configs and the mask choice sit below the stages that read them)."""
    graph = import_graph()
    packages = package_graph(graph)
    assert len(packages) > 15
    found = cycles(packages)
    explained = [
        f"{a} -> {b}: {package_edges(graph, a, b)}" for comp in found for a in comp for b in comp if b in packages[a]
    ]
    assert found == [], "\n".join(explained)
