"""The layers run one way, read off the source: samplers <- models <- benchmarks (and the CLI,
benchmarks/cli.py). No module imports a higher layer, no import cycle (lazy imports inside functions
count too), and no module imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("samplers", "models", "benchmarks")  # each may import only itself and the ones before it
CLI = "benchmarks.cli"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The kit's modules that `path` imports anywhere in its body (relative imports resolved)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in found if m.split(".")[0] in LAYERS}


def graph() -> dict[str, set[str]]:
    """module -> the kit's modules it imports (only names that are modules of the kit)."""
    files = {module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}
    return {name: {m for m in imports(path) if m in files and m != name} for name, path in files.items()}


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, targets in graph().items() for b in targets
              if LAYERS.index(b.split(".")[0]) > LAYERS.index(a.split(".")[0])]  # fmt: skip
    assert upward == []


def test_no_module_imports_the_cli():
    assert [a for a, targets in graph().items() if CLI in targets] == []


def test_there_is_no_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open" and not _is_package_of(nxt, node):
                cycles.append([*path[path.index(nxt):], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def _is_package_of(package: str, module: str) -> bool:
    """A module importing its own package's __init__ (which imports it back) is how packages re-export."""
    return module.startswith(package + ".")


def test_the_reader_sees_a_real_arrow():
    # the test's own parser against a known import: the CLI imports the pipeline's files module
    assert "models.files" in graph()[CLI] and "samplers" in graph()["models.pipeline"]
