"""The package's shape: layers import only downwards (cli -> pipeline -> report / integrations ->
monitor -> config -> data), and no module imports itself back through others, lazily or not."""

import ast
from pathlib import Path

import churnops

PACKAGE = Path(churnops.__file__).parent
LAYERS = ["cli", "pipeline", "report", "integrations", "monitor", "config", "data"]
SAME_LEVEL = {"report", "integrations"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Every churnops module and the churnops modules it imports, at any depth of its code."""
    files = [p for p in PACKAGE.rglob("*.py") if "compiled" not in p.parts and p.name != "__main__.py"]
    modules = {_module(p) for p in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        name, found = _module(path), set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {m for m in found if m in modules and m != name and m.startswith("churnops.")}
    return graph


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def test_layers_import_only_downwards():
    wrong = []
    for module, imported in _graph().items():
        mine = _layer(module)
        for other in imported:
            theirs = _layer(other)
            upwards = mine in LAYERS and theirs in LAYERS and LAYERS.index(theirs) < LAYERS.index(mine)
            if upwards and not (mine in SAME_LEVEL and theirs in SAME_LEVEL):
                wrong.append(f"{module} -> {other}")
    assert not wrong, wrong


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, cycles
