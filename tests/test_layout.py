"""The layout's limits, read with ``ast`` over every module of ``saccade/``: no module over
600 lines and no function (or method) over 120, so that each file stays one concept and each
function one phase that a reader can hold in view."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "saccade"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 120


def module_id(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def long_functions(source: str, limit: int) -> list[str]:
    """``name (lines)`` of every function or method of ``source`` longer than ``limit``
    lines, decorators and docstring included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > limit:
                found.append(f"{node.name} ({length} lines, from line {first})")
    return found


def test_the_checks_see_what_they_should():
    body = "\n".join(f"    x{i} = {i}" for i in range(130))
    source = f"@decorator\ndef big():\n{body}\n\ndef small():\n    return 1\n"
    assert long_functions(source, MAX_FUNCTION_LINES) == ["big (132 lines, from line 1)"]
    assert long_functions(source, 200) == []
    assert len(MODULES) > 20 and PACKAGE / "train.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=module_id)
def test_module_at_most_600_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module_id(path)} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=module_id)
def test_functions_at_most_120_lines(path):
    found = long_functions(path.read_text(), MAX_FUNCTION_LINES)
    assert not found, f"{module_id(path)}: " + "; ".join(found)
