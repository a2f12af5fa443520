"""The package's one boundary: the core never imports the tools (mt/tools/) or the CLI, and no module
imports another that imports it back — counting imports inside functions, which hide cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mt"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The mt modules `path` imports anywhere in the file (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from mt import trainer`
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) - {name} for name, path in paths.items()}


def _is_tool(name: str) -> bool:
    return name.startswith("mt.tools")


def _is_cli(name: str) -> bool:
    """The CLI: mt.cli, its command modules (which import tools inside their handlers) and `python -m mt`."""
    return name in ("mt.cli", "mt.__main__") or name == "mt.commands" or name.startswith("mt.commands.")


def test_the_graph_sees_the_package():
    graph = _graph()
    assert {"mt.trainer", "mt.checkpoint", "mt.tools.compress", "mt.cli", "mt.commands.serve"} <= set(graph)
    assert "mt.checkpoint" in graph["mt.trainer"] and "mt.step" in graph["mt.tools.compress"]


def test_core_never_imports_a_tool_or_the_cli():
    graph = _graph()
    core = [m for m in graph if not _is_tool(m) and not _is_cli(m)]
    offenders = {m: sorted(d for d in graph[m] if _is_tool(d) or _is_cli(d)) for m in core}
    assert not {m: d for m, d in offenders.items() if d}, offenders


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if nxt == "mt":  # the package itself (mt/__init__.py) imports nothing
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles
