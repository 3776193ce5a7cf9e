"""DESIGN.md's size rules: no module over 400 lines, no function over 60 lines (signature and body,
docstring left out) unless the line above its ``def`` is a comment that starts with ``# long:`` and says
why."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("anomaly_vae", "pipelines", "serving")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def python_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    docstring = ast.get_docstring(node, clean=False) is not None
    first = node.body[0]
    skipped = first.end_lineno - first.lineno + 1 if docstring and first.end_lineno else 0
    return node.end_lineno - node.lineno + 1 - skipped if node.end_lineno else 0


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_and_function_sizes(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{len(lines)} lines; split the module by concept"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and function_lines(node) > MAX_FUNCTION_LINES:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            reason = lines[first - 2].strip() if first >= 2 else ""
            assert reason.startswith("# long:"), f"{node.name} is {function_lines(node)} lines and says not why"
