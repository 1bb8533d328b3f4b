"""No import cycle inside gaussify: the graph of every ``import``/``from … import`` statement of the package, read
from the source by AST, function-level and ``TYPE_CHECKING`` imports included (a lazy import inside a function
closes a loop the first time the function runs)."""

from __future__ import annotations

import ast
from pathlib import Path

import gaussify

PACKAGE = Path(gaussify.__file__).parent


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under the package folder ``root``."""
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, files: dict[str, Path]) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its file.

    ``from m import x`` imports the submodule ``m.x`` when there is one, else ``m``; importing a module runs its
    parent packages first, so they count too, except the importer's own ancestors (already running)."""
    package = name if files[name].name == "__init__.py" else name.rpartition(".")[0]
    root = next(iter(files)).split(".")[0]
    targets = []
    for node in ast.walk(ast.parse(files[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [node.module or ""])
                base = base.rstrip(".")
            else:
                base = node.module or ""
            targets += [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
    edges = set()
    for target in targets:
        if target != root and not target.startswith(root + "."):
            continue
        while target not in files:  # an attribute path such as gaussify.metrics.normality.TEST_NAMES
            target = target.rpartition(".")[0]
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            module = ".".join(parts[:i])
            if not (name == module or name.startswith(module + ".")):
                edges.add(module)
    return edges


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, …, a]`` of ``graph``, or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step):] + [step]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph[step])))
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    files = modules(root)
    return {name: imported(name, files) for name in files}


def test_no_import_cycle_in_gaussify():
    graph = import_graph(PACKAGE)
    assert len(graph) > 30 and "gaussify.metrics.report" in graph["gaussify.cli"] | graph["gaussify.metrics"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_io_imports_nothing_of_gaussify_but_validation():
    assert import_graph(PACKAGE)["gaussify.io"] == {"gaussify._validation"}


def test_the_check_finds_a_cycle_closed_inside_a_function(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    for name, text in {"__init__.py": "", "a.py": "from .sub import b\n",
                       "sub/__init__.py": "", "sub/b.py": "def f():\n    from ..c import x\n",
                       "c.py": "import pkg.a\nx = 1\n", "d.py": "from . import c\n"}.items():
        (tmp_path / "pkg" / name).write_text(text)
    graph = import_graph(tmp_path / "pkg")
    assert graph["pkg.d"] == {"pkg.c"} and graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (tmp_path / "pkg" / "sub" / "b.py").write_text("def f():\n    return 1\n")
    assert find_cycle(import_graph(tmp_path / "pkg")) is None
