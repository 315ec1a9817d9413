"""Rooms that show their job: no module of src/numpynn over 500 lines, no function over 80
(its docstring not counted). A room that grows past either is split, not stretched."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "numpynn"
MAX_LINES, MAX_FUNCTION = 500, 80


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]  # the docstring does not count
            if body:
                found.append((node.name, body[-1].end_lineno - body[0].lineno + 1))
    return found


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these rooms: {long}"


def test_no_function_is_over_80_lines():
    long = {f"{p.relative_to(ROOT)}:{name}": n for p in _modules()
            for name, n in _function_lengths(p) if n > MAX_FUNCTION}
    assert not long, f"split these functions: {long}"


def test_the_measure_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    path = tmp_path / "m.py"
    path.write_text(f'def f():\n    """Doc."""\n{body}\n')
    assert _function_lengths(path) == [("f", 81)]
