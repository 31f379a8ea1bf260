"""The code's shape: lib/ has no import cycle, and every api/ file is a short entrypoint."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_FILE_MAX_LINES = 40


def lib_modules() -> dict[str, Path]:
    """Every module of lib/, by dotted name (a package by its own name)."""
    modules = {}
    for path in (ROOT / "lib").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The lib modules a module imports anywhere in it (in functions too), TYPE_CHECKING aside."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module in known and module != name}


def import_cycles() -> list[list[str]]:
    modules = lib_modules()
    graph = {name: imported_modules(name, path, set(modules)) for name, path in modules.items()}
    cycles, state, stack = [], {}, []

    def visit(name: str) -> None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_lib_has_no_import_cycle():
    assert import_cycles() == []


def test_an_import_inside_a_function_counts_toward_a_cycle(tmp_path):
    first = tmp_path / "a.py"
    first.write_text("def f():\n    from lib import b\n")

    assert imported_modules("lib.a", first, {"lib.a", "lib.b"}) == {"lib.b"}


def test_a_type_checking_import_does_not_count(tmp_path):
    module = tmp_path / "a.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lib import b\n"
    )

    assert imported_modules("lib.a", module, {"lib.a", "lib.b"}) == set()


def test_every_api_file_is_a_short_entrypoint():
    long_files = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "api").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > API_FILE_MAX_LINES
    }

    assert long_files == {}
