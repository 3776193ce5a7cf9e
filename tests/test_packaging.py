"""Packaging as users expect: a license file that matches the metadata, and a torch range that lets the
package be installed next to another torch (the exact CPU build is pinned in constraints.txt only)."""

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_license_is_an_spdx_string_with_its_file_shipped():
    assert PROJECT["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert PROJECT["license-files"] == ["LICENSE"]


def test_dependencies_are_ranges_and_constraints_pin_torch():
    for dependency in map(Requirement, PROJECT["dependencies"]):
        assert not any(spec.operator == "==" for spec in dependency.specifier), f"{dependency} is pinned"
    torch = next(r for r in map(Requirement, PROJECT["dependencies"]) if r.name == "torch")
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch==")]
    assert len(pins) == 1 and torch.specifier.contains(pins[0].removeprefix("torch=="))
