"""The shape STYLE.md keeps, checked on the source itself: dependencies point one way, functions stay small.

Read with `ast` from the files on disk, so a late import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The longest a function in product, script or benchmark code may be, its `def` line to its last line.
MAX_FUNCTION_LINES = 60


def python_files(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imported_modules(tree: ast.Module) -> Iterator[str]:
    """Every absolute module name an import statement in `tree` names (relative imports stay in their
    own package, so they cannot cross a boundary between top-level packages)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def imports_of(packages: tuple[str, ...], forbidden: str) -> list[str]:
    """`file: module` for each import of `forbidden` (or a module under it) in `packages`."""
    return [
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files(*packages)
        for module in imported_modules(parsed(path))
        if module == forbidden or module.startswith(f"{forbidden}.")
    ]


@pytest.mark.parametrize(
    ("packages", "forbidden"),
    [
        # Product code never depends on the benchmarks that measure it (STYLE.md, item 7).
        (("detection", "ml"), "benchmarks"),
        # ml/ is plain Python so the site, the command line and the benchmarks share it (ml/__init__.py).
        (("ml",), "django"),
        (("ml",), "detection"),
        (("ml",), "detector_site"),
    ],
)
def test_dependencies_point_one_way(packages, forbidden):
    assert imports_of(packages, forbidden) == []


def test_the_import_check_sees_late_and_dotted_imports():
    tree = ast.parse("import os\ndef f():\n    from benchmarks.inputs import faststart\n    import django.db")
    assert list(imported_modules(tree)) == ["os", "benchmarks.inputs", "django.db"]


def long_functions(*packages: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)"
        for path in python_files(*packages)
        if "migrations" not in path.parts
        for node in ast.walk(parsed(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES
    ]


def test_no_function_is_longer_than_sixty_lines():
    assert long_functions("ml", "detection", "scripts", "benchmarks") == []
