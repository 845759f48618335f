"""Property-based fuzzing of the real API process over HTTP with schemathesis, from the OpenAPI
document it serves: valid and invalid requests for every operation, and every response must be a
documented status with a body and headers that match the schema. Never a 5xx.

The schema is built at import time from services.api.openapi.build_spec, the function that serves
/openapi.json (schemathesis.pytest.from_fixture cannot load it from the running process: under
pytest 9.2 it fails with "'Function' object has no attribute '_nodeid'"), and the first test
checks that the running API serves exactly that document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case

from services.api.openapi import build_spec
from services.common.workflow_types import catalogue
from tests.hostile.stacks import (
    MAX_NUM_STEPS,
    running_stack,
    server_error_counts,
    unhandled_exceptions,
)
from tests.support import Stack, service_env

# Bounded: per operation, up to MAX_EXAMPLES fuzzed cases per mode (valid and invalid), plus the
# schema's examples and the coverage phase's boundary values.
MAX_EXAMPLES = 80

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "continue-on-failure": True,
        "request-timeout": 10,
        "suppress-health-check": ["too_slow", "filter_too_much"],
        "operations": [
            {
                # A cursor is an opaque token and status/name/queue are free strings in the schema,
                # so a schema-valid value can still be one the API must refuse (400): "every valid
                # request is accepted" cannot hold here. Every other check still runs.
                "include-operation-id": "listWorkflows",
                "checks": {"positive_data_acceptance": {"enabled": False}},
            }
        ],
    }
)
SPEC = build_spec(catalogue(MAX_NUM_STEPS, float(service_env("")["DEFAULT_STEP_SECONDS"])))
# The event streams stay open until their workflow ends, which a fuzzer's request timeout cannot
# tell from a hang: tests/integration/test_streams.py covers their bad input instead.
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG).exclude(
    operation_id=["streamWorkflowEvents", "streamWorkflowList"]
)


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    with running_stack(request, request.param, workdir) as s:
        yield s


def test_fuzzed_schema_is_the_served_one(stack: Stack) -> None:
    served: dict[str, Any] = httpx.get(f"{stack.base_url}/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(SPEC))


@schema.parametrize()
def test_every_response_conforms(case: Case[Any], stack: Stack) -> None:
    case.call_and_validate(base_url=stack.base_url)


def test_api_survived_the_fuzzing(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/readyz", timeout=10).status_code == 200
    assert server_error_counts(stack.base_url) == {}
    assert unhandled_exceptions(stack) == []
