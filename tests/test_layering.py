"""DESIGN.md's import rules: the library imports only its numeric stack, pipelines never import serving,
serving never imports pipelines.

Two exceptions, imported only inside functions so that ``import anomaly_vae`` never needs them:
``anomaly_vae/image_io.py`` (reading image folders, writing PNGs) may import Pillow, and
``anomaly_vae/registry.py`` (resolving model URIs) may import mlflow."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "anomaly_vae": {"anomaly_vae", "torch", "numpy", "pandas", "sklearn", "scipy", "safetensors", "tqdm"},
    "pipelines": None,  # anything but serving
    "serving": None,  # anything but pipelines
}
FORBIDDEN = {"anomaly_vae": set(), "pipelines": {"serving"}, "serving": {"pipelines"}}
LAZY_ALLOWED = {
    "anomaly_vae/image_io.py": {"PIL"},
    "anomaly_vae/registry.py": {"mlflow"},
}  # imported inside functions only


def imported_roots(path: Path, *, module_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(m) for f in functions for m in ast.walk(f)} if module_level_only else set()
    roots = set()
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
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
        name = path.relative_to(ROOT).as_posix()
        roots = imported_roots(path) - set(sys.stdlib_module_names) - {"__future__"}
        lazy = LAZY_ALLOWED.get(name, set())
        assert not imported_roots(path, module_level_only=True) & lazy, f"{name} must import {lazy} inside functions"
        allowed = ALLOWED[package]
        if allowed is not None:
            assert roots <= allowed | lazy, f"{name} imports {sorted(roots - allowed - lazy)}"
        assert not roots & FORBIDDEN[package], f"{name} imports {sorted(roots & FORBIDDEN[package])}"
