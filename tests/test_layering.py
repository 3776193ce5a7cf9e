"""DESIGN.md's import rules: the library imports only its numeric stack, pipelines never import serving,
serving never imports pipelines. Inside the library, the shared modules (base, scoring, training, ...)
know neither detector, and the tabular and image packages do not import each other.

Two exceptions, imported only inside functions so that ``import anomaly_vae`` never needs them:
``anomaly_vae/image/data.py`` and ``anomaly_vae/image/pictures.py`` (reading image files, writing PNGs)
may import Pillow, and ``anomaly_vae/registry.py`` (resolving model URIs) may import mlflow."""

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
    "anomaly_vae/image/data.py": {"PIL"},
    "anomaly_vae/image/pictures.py": {"PIL"},
    "anomaly_vae/registry.py": {"mlflow"},
}  # imported inside functions only


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


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


def test_library_layers():
    library = ROOT / "anomaly_vae"
    for path in sorted(library.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        family = {"tabular": "anomaly_vae.image", "image": "anomaly_vae.tabular"}
        part = path.relative_to(library).parts[0]
        banned = [family[part]] if part in family else list(family.values())
        if name == "anomaly_vae/__init__.py":
            continue  # exports both detectors
        for module in imported_modules(path):
            assert not any(module == b or module.startswith(b + ".") for b in banned), f"{name} imports {module}"


def benchmark_imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    """The modules of ``pipelines.benchmarks`` that ``path`` imports (``from pipelines import benchmarks``
    too); with ``module_level_only``, those imported outside functions."""
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(m) for f in functions for m in ast.walk(f)} if module_level_only else set()
    names = set()
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module == "pipelines":  # from pipelines import benchmarks
                names |= {f"pipelines.{alias.name}" for alias in node.names}
    return {n for n in names if n == "pipelines.benchmarks" or n.startswith("pipelines.benchmarks.")}


def test_jobs_never_import_the_benchmarks():
    """Benchmarks (pipelines/benchmarks/) may use the jobs; no other module of pipelines/ imports them. The
    command line is the one exception: pipelines/cli.py adds the `benchmark` subcommands from
    pipelines.benchmarks.cli, imported inside a function (which imports each benchmark when it runs)."""
    package = ROOT / "pipelines"
    for path in sorted(package.rglob("*.py")):
        if path.is_relative_to(package / "benchmarks"):
            continue
        name = path.relative_to(ROOT).as_posix()
        allowed = {"pipelines.benchmarks", "pipelines.benchmarks.cli"} if name == "pipelines/cli.py" else set()
        assert benchmark_imports(path) <= allowed, f"{name} imports {sorted(benchmark_imports(path) - allowed)}"
        assert not benchmark_imports(path, module_level_only=True), f"{name} imports pipelines.benchmarks at load"
