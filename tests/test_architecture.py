"""The layer map of docs/architecture.md, enforced on the import graph of `src/unionpose`.

The graph is read with `ast` from every module, imports inside functions included (a lazy import is still a
dependency). A package imports only from the layers below it, never from a sibling package of its own layer, and
no import cycle exists, between modules or between packages. `python tests/test_architecture.py` prints the counts.
"""
from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "unionpose"

# Bottom first. Packages of one layer do not import each other; `unionpose` itself only holds the version.
LAYERS = (
    ("skeletons",),
    ("core",),
    ("models",),
    ("infer", "export"),
    ("data", "synthetic"),
    ("teachers", "eval"),
    ("distill",),
    ("engine",),
    ("apps",),
    ("commands",),
)
INTERFACE_MODULES = {"cli": "commands", "__main__": "commands"}   # the command line's entry points
TORCH_FREE = ("skeletons", "core")


def modules(root: Path = SOURCE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file: absolute or relative, at any depth of the code."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in known else base), node.lineno


def internal_edges(known: dict[str, Path] | None = None) -> list[tuple[str, str, int]]:
    """(importer, imported, line) between modules of the package, the imported name resolved to its module."""
    known = known or modules()
    edges = []
    for name, path in known.items():
        for target, line in imports(name, path, known):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.append((name, target, line))
    return list(dict.fromkeys(edges))     # `from module import a, b` is one edge


def unit(module: str) -> str:
    """The top-level package a module belongs to (`unionpose.data.readers.coco` -> `data`)."""
    parts = module.split(".")
    return "" if len(parts) == 1 else INTERFACE_MODULES.get(parts[1], parts[1])


def layer(unit_name: str) -> int:
    for index, members in enumerate(LAYERS):
        if unit_name in members:
            return index
    raise AssertionError(f"package {unit_name!r} is in no layer of LAYERS: add it where it belongs")


def layer_violations(edges: list[tuple[str, str, int]]) -> list[str]:
    """Imports from a lower layer up to a higher one, and imports between sibling packages of one layer."""
    found = []
    for source, target, line in edges:
        low, high = unit(source), unit(target)
        if not high or low == high:
            continue
        if layer(low) <= layer(high):
            found.append(f"{source}:{line} imports {target} ({low} -> {high})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def graphs(edges: list[tuple[str, str, int]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The module graph and the package graph (edges between top-level packages)."""
    module_graph: dict[str, set[str]] = {}
    package_graph: dict[str, set[str]] = {}
    for source, target, _ in edges:
        module_graph.setdefault(source, set()).add(target)
        if unit(target) and unit(source) != unit(target):
            package_graph.setdefault(unit(source), set()).add(unit(target))
    return module_graph, package_graph


def test_every_package_has_a_layer():
    for name in modules():
        if unit(name):
            layer(unit(name))


def test_no_import_runs_up_the_layers_or_across_a_layer():
    violations = layer_violations(internal_edges())
    assert not violations, "imports against docs/architecture.md:\n" + "\n".join(violations)


def test_no_import_cycles():
    module_graph, package_graph = graphs(internal_edges())
    assert not cycles(module_graph), f"module import cycles: {cycles(module_graph)}"
    assert not cycles(package_graph), f"package import cycles: {cycles(package_graph)}"


def test_the_runtime_core_never_imports_torch():
    known = modules()
    found = [f"{name}:{line}" for name, path in known.items() if unit(name) in TORCH_FREE
             for target, line in imports(name, path, known) if target.split(".")[0] == "torch"]
    assert not found, f"torch imported by the runtime core: {found}"


def test_inference_imports_torch_only_to_run_a_torch_model():
    """Importing `unionpose.infer` must not import torch; only the PyTorch backend does (tests/test_torch_free.py)."""
    found = []
    for name, path in modules().items():
        if unit(name) != "infer" or name == "unionpose.infer.torch_backend":
            continue
        for node in _module_level(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{name}:{node.lineno}" for imported in names if imported.split(".")[0] == "torch"]
    assert not found, f"torch imported at module level by inference: {found}"


def _module_level(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported (top level, inside if/try blocks too, not in functions)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try)):
            pending += node.body + node.orelse + getattr(node, "finalbody", []) + \
                [statement for handler in getattr(node, "handlers", []) for statement in handler.body]


def test_the_checker_sees_lazy_relative_and_upward_imports(tmp_path):
    package = tmp_path / "unionpose"
    for folder in ("core", "engine"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "engine" / "loop.py").write_text("from ..core import codec\n")
    (package / "core" / "codec.py").write_text("def f():\n    from unionpose.engine import loop\n")
    edges = internal_edges(modules(package))
    assert ("unionpose.engine.loop", "unionpose.core.codec", 1) in edges
    assert layer_violations(edges) == ["unionpose.core.codec:2 imports unionpose.engine.loop (core -> engine)"]
    assert cycles(graphs(edges)[1]) == [["core", "engine"]]


if __name__ == "__main__":
    all_edges = internal_edges()
    modules_graph, packages_graph = graphs(all_edges)
    print(json.dumps({"modules": len(modules()), "import_edges": len(all_edges),
                      "layer_violations": layer_violations(all_edges), "module_cycles": cycles(modules_graph),
                      "package_cycles": cycles(packages_graph)}, indent=1))
