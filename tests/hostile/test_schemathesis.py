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
from datetime import UTC, datetime
from typing import Any

import httpx
import schemathesis
from schemathesis import Case

from services.api.openapi import build_spec
from services.api.validation import MAX_DELAY_SECONDS
from services.common.workflow_types import catalogue
from tests.hostile.stacks import (
    MAX_NUM_STEPS,
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
            },
            {
                # Likewise a cron expression and a backfill window (in the past, at most
                # MAX_BACKFILL_RUNS times) are strings JSON Schema cannot check: a schema-valid
                # one can still be refused (422, naming the field).
                "include-operation-id": ["createSchedule", "backfillSchedule"],
                "checks": {"positive_data_acceptance": {"enabled": False}},
            },
            # The same for the dead letters' filters and the bulk actions' filter objects: free
            # strings and date-times the schema allows can still be refused (a NUL in a name,
            # a leap second), with a 4xx naming the field.
            *(
                {
                    "include-operation-id": op,
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                }
                for op in ("listDeadLetters", "bulkRetry", "bulkCancel")
            ),
        ],
    }
)


# run_at: JSON Schema can say "a date-time" but neither "at most MAX_DELAY_SECONDS from now" nor
# (for query parameters) "not together with delay_seconds", so a schema-valid request can still be
# refused with a 422 naming run_at. tests/integration/test_api.py checks those refusals; here such
# a run_at is dropped before the call (every phase, coverage included), so the acceptance checks
# keep their full strength for everything else. Only a valid date-time is dropped: a malformed
# run_at (a negative case) is sent as generated.
def _drop_unacceptable_run_at(options: Any) -> None:
    if not isinstance(options, dict) or not isinstance(options.get("run_at"), str):
        return
    try:
        run_at = datetime.fromisoformat(options["run_at"].replace("z", "Z"))
        ahead = (run_at - datetime.now(UTC)).total_seconds()
    except (ValueError, TypeError):
        return
    except OverflowError:
        ahead = float("inf") if run_at.year > 1 else float("-inf")
    if options.get("delay_seconds") is not None or ahead > MAX_DELAY_SECONDS - 3600:
        del options["run_at"]


def tame_run_at(case: Case[Any]) -> None:
    _drop_unacceptable_run_at(case.query)
    body = case.body
    items = body.get("workflows") if isinstance(body, dict) else None
    if isinstance(items, list):
        for item in items:
            _drop_unacceptable_run_at(item)
    else:
        _drop_unacceptable_run_at(body)


SPEC = build_spec(catalogue(MAX_NUM_STEPS, float(service_env("")["DEFAULT_STEP_SECONDS"])))
# The event streams stay open until their workflow ends, which a fuzzer's request timeout cannot
# tell from a hang: tests/integration/test_streams.py covers their bad input instead.
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG).exclude(
    operation_id=["streamWorkflowEvents", "streamWorkflowList"]
)


def test_fuzzed_schema_is_the_served_one(stack: Stack) -> None:
    served: dict[str, Any] = httpx.get(f"{stack.base_url}/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(SPEC))


@schema.parametrize()
def test_every_response_conforms(case: Case[Any], stack: Stack) -> None:
    tame_run_at(case)
    case.call_and_validate(base_url=stack.base_url)


def test_api_survived_the_fuzzing(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/readyz", timeout=10).status_code == 200
    assert server_error_counts(stack.base_url) == {}
    assert unhandled_exceptions(stack) == []
