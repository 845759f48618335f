"""The OpenAPI description of the operations routes (issue 13): steps, dead letters, fork, retry
and bulk actions. Kept apart from openapi.py, which merges these in (`schemas()`, `paths()`)."""

from __future__ import annotations

from typing import Any

from services.api.ops_validation import MAX_BULK, MAX_ERROR_FILTER_LEN
from services.api.routes.steps import DEFAULT_STEPS_LIMIT, MAX_STEPS_LIMIT
from services.api.validation import DEFAULT_LIMIT, MAX_FILTER_VALUES, MAX_LIMIT
from services.common.failures_sql import (
    CANCELLABLE_STATUSES,
    DEAD_STATUSES,
    RETRYABLE_STATUSES,
)

_TIME = {"type": ["string", "null"], "format": "date-time"}
_NO_NUL = "^[^\\u0000]+$"
_ID = {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": _NO_NUL}
_ERR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _filter(statuses: tuple[str, ...]) -> dict[str, Any]:
    strings = {"type": "array", "maxItems": MAX_FILTER_VALUES, "items": _ID}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "status": {"type": "array", "items": {"enum": list(statuses)}},
            "name": strings | {"description": "Workflow names (the DBOS name, e.g. fail-after)."},
            "queue": strings,
            "error": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ERROR_FILTER_LEN,
                "pattern": _NO_NUL,
                "description": "Case-insensitive substring of the error.",
            },
            "created_after": {"type": "string", "format": "date-time"},
            "created_before": {"type": "string", "format": "date-time"},
            "forked": {"type": "boolean", "description": "Already forked (e.g. retried) or not."},
        },
    }


def _bulk_request(statuses: tuple[str, ...], default: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "description": f"Either workflow_ids or filter. A filter's status defaults to {default}.",
        "properties": {
            "workflow_ids": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BULK,
                "items": _ID,
            },
            "filter": _filter(statuses),
            "dry_run": {"type": "boolean", "description": "Only say what would be done."},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_BULK},
        },
        "oneOf": [{"required": ["workflow_ids"]}, {"required": ["filter"]}],
    }


def schemas(list_props: dict[str, Any], list_required: list[str]) -> dict[str, Any]:
    """`list_props`: a list item's properties, which a dead letter extends."""
    step = {
        "type": "object",
        "required": [
            "function_id",
            "name",
            "status",
            "started_at",
            "completed_at",
            "duration_ms",
            "output",
            "error",
            "child_workflow_id",
            "attempts",
            "reexecuted",
        ],
        "properties": {
            "function_id": {"type": "integer", "minimum": 0},
            "name": {"type": "string"},
            "status": {"enum": ["SUCCESS", "ERROR"]},
            "started_at": _TIME,
            "completed_at": _TIME,
            "duration_ms": {"type": ["integer", "null"], "minimum": 0},
            "output": {},
            "error": {"type": ["string", "null"]},
            "child_workflow_id": {"type": ["string", "null"]},
            "attempts": {
                "type": "integer",
                "minimum": 1,
                "description": "Runs of this step the records prove (a lower bound; README).",
            },
            "reexecuted": {"type": "boolean"},
        },
    }
    outcome = {
        "type": "object",
        "required": ["workflow_id", "outcome"],
        "properties": {
            "workflow_id": {"type": "string"},
            "retry_workflow_id": {"type": ["string", "null"]},
            "outcome": {"enum": ["forked", "resumed", "already_retried", "cancelled"]},
        },
    }
    return {
        "Step": step,
        "Steps": {
            "type": "object",
            "required": ["workflow_id", "workflow_status", "dispatches", "steps"],
            "properties": {
                "workflow_id": {"type": "string"},
                "workflow_status": {"type": "string"},
                "dispatches": {"type": "integer", "minimum": 0},
                "steps": {"type": "array", "items": _ref("Step")},
            },
        },
        "DeadLetter": {
            "type": "object",
            "required": [*list_required, "error", "recovery_attempts"],
            "properties": {
                **list_props,
                "error": {"type": ["string", "null"]},
                "recovery_attempts": {"type": "integer", "minimum": 0},
                "app_version": {"type": ["string", "null"]},
            },
        },
        "ForkRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start_step"],
            "properties": {"start_step": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}},
        },
        "ForkResponse": {
            "type": "object",
            "required": ["workflow_id", "forked_from", "start_step"],
            "properties": {
                "workflow_id": {"type": "string"},
                "forked_from": {"type": "string"},
                "start_step": {"type": "integer"},
            },
        },
        "RetryResponse": {
            "type": "object",
            "required": ["workflow_id", "retried", "outcome"],
            "properties": {
                "workflow_id": {"type": "string", "description": "The run that retries it."},
                "retried": {"type": "string"},
                "outcome": {"enum": ["forked", "resumed", "already_retried"]},
            },
        },
        "BulkRetryRequest": _bulk_request(
            RETRYABLE_STATUSES, "ERROR, MAX_RECOVERY_ATTEMPTS_EXCEEDED"
        ),
        "BulkCancelRequest": _bulk_request(CANCELLABLE_STATUSES, "ENQUEUED, DELAYED, PENDING"),
        "BulkResponse": {
            "type": "object",
            "required": [
                "action",
                "dry_run",
                "matched",
                "count",
                "workflow_ids",
                "results",
                "skipped",
                "more",
                "max_per_call",
            ],
            "properties": {
                "action": {"enum": ["retry", "cancel"]},
                "dry_run": {"type": "boolean"},
                "matched": {"type": "integer", "minimum": 0},
                "count": {"type": "integer", "minimum": 0},
                "workflow_ids": {"type": "array", "items": {"type": "string"}},
                "results": {"type": "array", "items": outcome},
                "skipped": {"type": "array", "items": {"type": "object"}},
                "more": {"type": "boolean", "description": "More matched: repeat the call."},
                "max_per_call": {"type": "integer"},
            },
        },
    }


_ID_PARAM = {
    "name": "workflow_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
_NOT_FOUND = _json(_ERR, "No such workflow.")
_DOWN = _json(_ERR, "The database is unavailable.")


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


def _bulk(summary: str, op: str, request: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "operationId": op,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            },
            "responses": {
                "200": _json(_ref("BulkResponse"), "Dry run: what would be done."),
                "202": _json(_ref("BulkResponse"), "Done."),
                "400": _json(_ERR, "The body is not JSON."),
                "413": _json(_ERR, "The body is too large."),
                "415": _json(_ERR, "Not application/json."),
                "422": _json(_ERR, "A bad field, named in error.field; nothing done."),
                "503": _DOWN,
            },
        }
    }


def paths() -> dict[str, Any]:
    return {
        "/api/workflows/{workflow_id}/steps": {
            "get": {
                "summary": "A workflow's recorded steps, in order",
                "operationId": "listWorkflowSteps",
                "parameters": [
                    _ID_PARAM,
                    _query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_STEPS_LIMIT,
                            "default": DEFAULT_STEPS_LIMIT,
                        },
                    ),
                    _query(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                        "Steps after this function_id (the Link header's next page).",
                    ),
                ],
                "responses": {
                    "200": _json(_ref("Steps"), "The steps; a next page in the Link header."),
                    "400": _json(_ERR, "A bad query parameter."),
                    "404": _NOT_FOUND,
                    "503": _DOWN,
                },
            }
        },
        "/api/dead-letter": {
            "get": {
                "summary": "Workflows that ended ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED",
                "operationId": "listDeadLetters",
                "parameters": [
                    _query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                    ),
                    _query(
                        "cursor", {"type": "string"}, "From the Link header of the previous page."
                    ),
                    _query("status", {"enum": list(DEAD_STATUSES)}),
                    _query("name", {"type": "string"}, "Workflow names, comma-separated."),
                    _query("queue", {"type": "string"}, "Queue names, comma-separated."),
                    _query(
                        "error",
                        {"type": "string", "minLength": 1, "maxLength": MAX_ERROR_FILTER_LEN},
                        "Case-insensitive substring of the error.",
                    ),
                    _query("created_after", {"type": "string", "format": "date-time"}),
                    _query("created_before", {"type": "string", "format": "date-time"}),
                    _query(
                        "forked",
                        {"type": "boolean"},
                        "Only those already forked (e.g. retried), or only those not.",
                    ),
                ],
                "responses": {
                    "200": _json(
                        {"type": "array", "items": _ref("DeadLetter")},
                        "Newest first; a next page in the Link header.",
                    ),
                    "400": _json(_ERR, "A bad query parameter."),
                    "503": _DOWN,
                },
            }
        },
        "/api/workflows/{workflow_id}/fork": {
            "post": {
                "summary": "Fork: replay the steps before start_step, run the rest again",
                "operationId": "forkWorkflow",
                "parameters": [_ID_PARAM],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ForkRequest")}},
                },
                "responses": {
                    "202": _json(_ref("ForkResponse"), "Forked and enqueued."),
                    "400": _json(_ERR, "The body is not JSON."),
                    "404": _NOT_FOUND,
                    "415": _json(_ERR, "Not application/json."),
                    "422": _json(
                        _ERR, "start_step is missing, not an integer, or beyond the recorded steps."
                    ),
                    "503": _DOWN,
                },
            }
        },
        "/api/workflows/{workflow_id}/retry": {
            "post": {
                "summary": (
                    "Retry: fork an ERROR workflow from its first step; resume a CANCELLED or "
                    "MAX_RECOVERY_ATTEMPTS_EXCEEDED one"
                ),
                "operationId": "retryWorkflow",
                "parameters": [_ID_PARAM],
                "responses": {
                    "202": _json(
                        _ref("RetryResponse"),
                        "The run that retries it (the same one when repeated).",
                    ),
                    "404": _NOT_FOUND,
                    "409": _json(_ERR, "The workflow's status cannot be retried."),
                    "503": _DOWN,
                },
            }
        },
        "/api/workflows/bulk/retry": _bulk("Retry many workflows", "bulkRetry", "BulkRetryRequest"),
        "/api/workflows/bulk/cancel": _bulk(
            "Cancel many workflows", "bulkCancel", "BulkCancelRequest"
        ),
    }
