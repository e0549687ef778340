"""The library's shape: no import cycles, and nothing in ``qa`` imports the app, the command
line, the repository's evals or its layout (every import is read from the source, lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

QA = Path(__file__).resolve().parents[1] / "qa"


def _module(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (anywhere in its source, including inside functions)."""
    modules = {_module(p): p for p in QA.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if (t in modules and t != name) or t.split(".")[0] in ("app", "evals", "tests"):
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
            if w not in graph:
                continue
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


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 30
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_app_or_the_repository() -> None:
    outside = {
        m: sorted(t for t in ts if t.split(".")[0] in ("app", "evals", "tests"))
        for m, ts in import_graph().items()
    }
    assert {m: ts for m, ts in outside.items() if ts} == {}


def test_nothing_in_the_library_assumes_the_repository_layout() -> None:
    """No string names the checkout's folders (shared/, evals/, corpus/, embeddings/)."""
    folders = ("shared", "evals", "corpus", "embeddings", "checkpoints")
    offenders = []
    for p in QA.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts = node.value.replace("\\", "/").split("/")
                if "/" in node.value and len(node.value) < 80 and any(f in parts for f in folders):
                    offenders.append(f"{p.relative_to(QA.parent)}: {node.value!r}")
            # Path(...) / "shared" / ...
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                right = node.right
                if isinstance(right, ast.Constant) and right.value in folders:
                    offenders.append(f"{p.relative_to(QA.parent)}: / {right.value!r}")
    assert offenders == []
