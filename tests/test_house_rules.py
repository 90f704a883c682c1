"""The house rules of trainers/ that a reader relies on: short functions, no private names of another package."""

import ast
from pathlib import Path

import pytest

TRAINERS = Path(__file__).resolve().parents[1] / "trainers"
MODULES = sorted(TRAINERS.rglob("*.py"))
LONGEST_FUNCTION = 60


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_function_is_longer_than_60_lines(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]
    assert long == []


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_private_name_of_another_package_is_imported(path):
    """``from divergences._x import y`` or ``from divergences import _y``: private to divergences, not for trainers."""
    private = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "trainers" and (any(part.startswith("_") for part in parts)
                                          or any(alias.name.startswith("_") for alias in node.names)):
                private.append(node.module)
        elif isinstance(node, ast.Import):
            private += [alias.name for alias in node.names
                        if alias.name.split(".")[0] != "trainers" and any(part.startswith("_") for part in alias.name.split(".")[1:])]
    assert private == []
