"""The layout's limits, read with ``ast`` over every module of ``saccade/``: no module over
800 lines and no function (or method) over 120, so that each file stays one concept and each
function one phase that a reader can hold in view; at most 12 modules at the top of the
package (the rest grouped by concern in subpackages); and no import cycle."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "saccade"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 800
MAX_TOP_LEVEL_MODULES = 12
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
    assert len(MODULES) > 20 and PACKAGE / "train" / "loop.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=module_id)
def test_module_at_most_800_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module_id(path)} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=module_id)
def test_functions_at_most_120_lines(path):
    found = long_functions(path.read_text(), MAX_FUNCTION_LINES)
    assert not found, f"{module_id(path)}: " + "; ".join(found)


def test_top_level_holds_at_most_12_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {module_name(p): p for p in MODULES}


def imports_of(path: Path) -> set[str]:
    """The saccade modules that ``path`` imports at its top level or inside functions: ``from
    PKG import name`` counts as an import of ``PKG.name`` where that is a module, else of
    ``PKG``."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in NAMES}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for a in node.names:
                sub = f"{source}.{a.name}"
                found.add(sub if sub in NAMES else source)
    return {m for m in found if m in NAMES and m != own}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules, found by a depth-first search (one path per cycle met)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = {name: imports_of(path) for name, path in NAMES.items()}
    assert graph["saccade.train.loop"] >= {"saccade.train.config", "saccade.checkpoint"}
    assert cycles(graph) == []
