"""DESIGN.md's import rules: the library imports only its numeric stack, pipelines never import serving,
serving never imports pipelines."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "anomaly_vae": {"anomaly_vae", "torch", "numpy", "pandas", "sklearn", "safetensors", "tqdm"},
    "pipelines": None,  # anything but serving
    "serving": None,  # anything but pipelines
}
FORBIDDEN = {"anomaly_vae": set(), "pipelines": {"serving"}, "serving": {"pipelines"}}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_rules(package):
    files = sorted((ROOT / package).rglob("*.py"))
    if package == "anomaly_vae":
        assert files, "the library must exist"
    for path in files:
        roots = imported_roots(path) - set(sys.stdlib_module_names) - {"__future__"}
        allowed = ALLOWED[package]
        if allowed is not None:
            assert roots <= allowed, f"{path.relative_to(ROOT)} imports {sorted(roots - allowed)}"
        assert not roots & FORBIDDEN[package], f"{path.relative_to(ROOT)} imports {sorted(roots & FORBIDDEN[package])}"
