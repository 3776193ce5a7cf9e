"""OpenAPI fuzzing with schemathesis against the running app over real HTTP: every default check, a
fixed budget of examples per operation. A 5xx, or a response outside the declared schema, fails."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("RELIABILITY_FUZZ_EXAMPLES", "40"))  # per operation; `make reliability`: 1000


@pytest.fixture(scope="module")
def api_schema(server):
    client, _ = server
    return schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_error_and_no_schema_violation(case):
    case.call_and_validate()
