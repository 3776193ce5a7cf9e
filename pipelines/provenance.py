"""The conditions of a benchmark run, written as the first line of its output: when, which code, which
machine and how busy it was, and the command that reruns it. Speed figures mean little without them."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=10, check=True).stdout


def _commit() -> str:
    """Short hash of HEAD, marked when tracked files have uncommitted changes; "unknown" without git."""
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        changed = _git("status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + uncommitted changes" if changed else commit


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_conditions(command: str) -> str:
    """One line: UTC time, commit, machine, 1-minute load average at the start (idle below 0.5), command."""
    load = os.getloadavg()[0]
    state = "idle" if load < 0.5 else "busy: other work was running"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Run of {now}, commit {_commit()}, {_cpu_name()} ({os.cpu_count()} CPUs), Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average {load:.2f} at the start ({state}). "
        f"Command: `{command}`."
    )
