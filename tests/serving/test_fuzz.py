"""OpenAPI fuzzing with schemathesis against the running app over real HTTP: every default check, a
fixed budget of examples per operation, a fixed seed. A 5xx, a response outside the declared schema, an
accepted invalid request or a refused valid one fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "40")  # per operation; `make reliability`: 1000


def test_no_server_error_and_no_schema_violation(server):
    client, _ = server
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{client.base_url}/openapi.json",
    ]
    command += ["--max-examples", EXAMPLES, "--seed", "1", "--no-color"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "No issues found" in result.stdout and " generated, " in result.stdout
