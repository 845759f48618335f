"""/openapi.json: the API's contract. The fixed routes are written here; every workflow type's
input schema, its POST /api/workflows/{type} route and the batch items are generated from the
workflow catalogue (services/common/workflow_types.py), so there is no hand-kept copy of them.

tests/integration/test_api.py checks every served route is described and the responses the
tests see validate against the schemas given here; tests/hostile/test_schemathesis.py fuzzes it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services import __version__
from services.api import openapi_ops
from services.api.openapi_schedules import schedule_paths, schedule_schemas
from services.api.validation import (
    DEFAULT_LIMIT,
    MAX_BATCH_ITEMS,
    MAX_DELAY_SECONDS,
    MAX_IDEMPOTENCY_KEY,
    MAX_LIMIT,
    MAX_PARTITION_KEY,
    MAX_PRIORITY,
    MAX_TIMEOUT_SECONDS,
    PARTITION_KEY,
)
from services.common.catalogue import Catalogue
from services.common.names import WORKFLOW_STATUSES
from services.common.workflow_types import DEMO

_TIME = {"type": ["string", "null"], "format": "date-time"}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR_REF, description)


_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_IDEMPOTENCY_KEY,
    # Printable ASCII; HTTP strips spaces at either end.
    "pattern": "^[!-~]([ -~]*[!-~])?$",
}


_KEY_PARAM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": _KEY_SCHEMA,
    "description": "A retry with the same key and body gets the same workflow.",
}

_WORKFLOW_ID_PARAM = {
    "name": "workflow_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}

_WORKFLOW_PROPS: dict[str, Any] = {
    "workflow_id": {"type": "string"},
    "workflow_status": {"type": "string", "enum": list(WORKFLOW_STATUSES)},
    "steps_completed": {"type": ["integer", "null"], "minimum": 0},
    "num_steps": {"type": ["integer", "null"], "minimum": 1},
    "workflow_name": {"type": "string"},
    "queue_name": {"type": ["string", "null"]},
    "priority": {"type": "integer"},
    "partition_key": {"type": ["string", "null"]},
    "created_at": {"type": "string", "format": "date-time"},
    "started_at": _TIME,
    "completed_at": _TIME,
}
_WORKFLOW_REQUIRED = list(_WORKFLOW_PROPS)

_DETAIL_PROPS: dict[str, Any] = {
    **_WORKFLOW_PROPS,
    "updated_at": _TIME,
    "executor_id": {"type": ["string", "null"]},
    "app_version": {"type": ["string", "null"]},
    "recovery_attempts": {"type": "integer", "minimum": 0},
    "error": {"type": ["string", "null"]},
    "input": {"description": "The workflow's input (its keyword arguments), as JSON."},
    "result": {"description": "What the workflow returned (null until SUCCESS)."},
    "forked_from": {"type": ["string", "null"], "description": "The workflow this one forks."},
}


_OPTIONS: dict[str, Any] = {
    "priority": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": MAX_PRIORITY,
        "description": "Lower runs first; a workflow without priority runs before any.",
    },
    "delay_seconds": {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": MAX_DELAY_SECONDS,
        "description": "Run no earlier than this many seconds from now (status DELAYED until).",
    },
    "run_at": {
        "type": ["string", "null"],
        "format": "date-time",
        "description": (
            "Run no earlier than this RFC 3339 time with an offset (e.g. 2026-01-31T09:00:00Z),"
            " instead of delay_seconds (not both). A past time runs at once; at most"
            f" {MAX_DELAY_SECONDS / 86400:g} days ahead."
        ),
    },
    "timeout_seconds": {
        "type": ["number", "null"],
        "exclusiveMinimum": 0,
        "maximum": MAX_TIMEOUT_SECONDS,
        "description": "Cancel the workflow if it has not finished this long after it starts.",
    },
    "partition_key": {
        "type": ["string", "null"],
        "minLength": 1,
        "maxLength": MAX_PARTITION_KEY,
        "pattern": PARTITION_KEY.pattern,
        "description": (
            "The tenant or customer this work belongs to: when the workers set a per-key "
            "concurrency (WORKER_PARTITION_CONCURRENCY), at most that many of one key run at "
            'once. Omitted: "default".'
        ),
    },
}


_ACCESS_TOKEN_PARAM: dict[str, Any] = {
    "name": "access_token",
    "in": "query",
    "required": False,
    "description": "The API token, for clients that cannot send headers (EventSource).",
    "schema": {"type": "string"},
}


def _event_stream(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }


def _input_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/Input.{name}"}


def _batch_item(catalogue: Catalogue) -> dict[str, Any]:
    # The input's schema follows the item's type (the default type when it has none).
    by_type = [
        {
            "if": {"required": ["type"], "properties": {"type": {"const": t.name}}},
            "then": {"properties": {"input": _input_ref(t.name)}},
        }
        for t in catalogue
    ]
    by_type.append(
        {
            "if": {"not": {"required": ["type"]}},
            "then": {"properties": {"input": _input_ref(catalogue.default)}},
        }
    )
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["input"],
        "properties": {
            "type": {
                "type": "string",
                "enum": list(catalogue.types),
                "default": catalogue.default,
            },
            "input": {"type": "object"},
            "idempotency_key": {**_KEY_SCHEMA, "type": ["string", "null"]},
            **_OPTIONS,
        },
        "allOf": by_type,
    }


def _typed_enqueue(name: str, description: str) -> dict[str, Any]:
    options = [
        {"name": option, "in": "query", "required": False, "schema": schema}
        for option, schema in _OPTIONS.items()
    ]
    return {
        "summary": f"Enqueue a {name} workflow",
        "description": description,
        "operationId": f"enqueue.{name}",
        "parameters": [_KEY_PARAM, *options],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _input_ref(name)}},
        },
        "responses": {
            "202": _json(
                {"$ref": "#/components/schemas/EnqueueResponse"}, "Enqueued (or replayed)."
            ),
            "400": _error("Malformed JSON, bad header or query parameter."),
            "409": _error("Idempotency-Key reused with a different body."),
            "413": _error("Body too large."),
            "415": _error("Content-Type is not application/json."),
            "422": _error("A field is missing, unknown or out of range: `field` names it."),
            "503": _error("The database is unavailable."),
        },
    }


def build_spec(catalogue: Catalogue) -> dict[str, Any]:
    demo = catalogue.types[DEMO]
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "description": "The offending field."},
                        "index": {"type": "integer", "description": "The offending batch item."},
                    },
                }
            },
        },
        # The seed's body: the demo's input and the enqueue options side by side.
        "EnqueueRequest": {
            **demo.input_schema,
            "properties": {**demo.input_schema["properties"], **_OPTIONS},
        },
        **{f"Input.{t.name}": dict(t.input_schema) for t in catalogue},
        "BatchRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["workflows"],
            "properties": {
                "workflows": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH_ITEMS,
                    "items": _batch_item(catalogue),
                }
            },
        },
        "BatchResponse": {
            "type": "object",
            "required": ["workflow_ids"],
            "properties": {"workflow_ids": {"type": "array", "items": {"type": "string"}}},
        },
        "WorkflowType": {
            "type": "object",
            "required": ["name", "workflow_name", "queue", "description", "input_schema"],
            "properties": {
                "name": {"type": "string"},
                "workflow_name": {"type": "string"},
                "queue": {"type": "string"},
                "description": {"type": "string"},
                "input_schema": {"type": "object"},
            },
        },
        "EnqueueResponse": {
            "type": "object",
            "required": ["workflow_id", "workflow_status", "num_steps", "url"],
            "properties": {
                **_WORKFLOW_PROPS,
                "url": {"type": "string"},
            },
        },
        "Workflow": {
            "type": "object",
            "required": _WORKFLOW_REQUIRED,
            "properties": _WORKFLOW_PROPS,
        },
        "WorkflowDetail": {
            "type": "object",
            "required": list(_DETAIL_PROPS),
            "properties": _DETAIL_PROPS,
        },
        "Queue": {
            "type": "object",
            "required": [
                "queue_name",
                "enqueued",
                "pending",
                "oldest_enqueued_age_seconds",
                "worker_concurrency",
                "global_concurrency",
                "polling_interval_seconds",
                "registered",
                "runnable",
                "held",
            ],
            "properties": {
                "queue_name": {"type": "string"},
                "enqueued": {"type": "integer", "minimum": 0},
                "pending": {"type": "integer", "minimum": 0},
                "oldest_enqueued_age_seconds": {"type": "number", "minimum": 0},
                "worker_concurrency": {"type": ["integer", "null"]},
                "global_concurrency": {"type": ["integer", "null"]},
                "polling_interval_seconds": {"type": ["number", "null"]},
                "registered": {
                    "type": "boolean",
                    "description": "A worker has registered this queue in the database.",
                },
                "runnable": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Of the enqueued, how many a worker could start now.",
                },
                "held": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                    "description": (
                        "Waiting workflows a limit holds back, by reason: partition_concurrency, "
                        "no_partition_key, concurrency, rate_limit (of the enqueued) and delayed "
                        "(DELAYED, not yet due)."
                    ),
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
        },
    }
    schemas.update(schedule_schemas(catalogue))
    schemas.update(openapi_ops.schemas(_WORKFLOW_PROPS, _WORKFLOW_REQUIRED))
    ref = {name: {"$ref": f"#/components/schemas/{name}"} for name in schemas}
    workflow_action = {
        "parameters": [_WORKFLOW_ID_PARAM],
        "responses": {
            "202": _json(ref["WorkflowDetail"], "Accepted; the workflow as it is now."),
            "404": _error("No such workflow."),
            "409": _error("The workflow's status does not allow this action."),
            "503": _error("The database is unavailable."),
        },
    }
    list_params: list[dict[str, Any]] = [
        {
            "name": "limit",
            "in": "query",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT,
            },
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {
            "name": "status",
            "in": "query",
            "description": "One status, or several separated by commas.",
            "schema": {"type": "string"},
        },
        {"name": "name", "in": "query", "schema": {"type": "string"}},
        {"name": "queue", "in": "query", "schema": {"type": "string"}},
    ]
    paths: dict[str, Any] = {
        "/api/workflows": {
            "post": {
                "summary": "Enqueue a workflow",
                "operationId": "enqueueWorkflow",
                "parameters": [_KEY_PARAM],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref["EnqueueRequest"]}},
                },
                "responses": {
                    "202": _json(ref["EnqueueResponse"], "Enqueued (or replayed)."),
                    "400": _error("Malformed JSON, bad header."),
                    "409": _error("Idempotency-Key reused with a different body."),
                    "413": _error("Body too large."),
                    "415": _error("Content-Type is not application/json."),
                    "422": _error("A field is missing, unknown or out of range."),
                    "503": _error("The database is unavailable."),
                },
            },
            "get": {
                "summary": "List workflows, newest first",
                "description": 'The next page, if any, is in the `Link: <...>; rel="next"` header.',
                "operationId": "listWorkflows",
                "parameters": list_params,
                "responses": {
                    "200": {
                        **_json({"type": "array", "items": ref["Workflow"]}, "One page."),
                        "headers": {
                            "Link": {
                                "schema": {"type": "string"},
                                "description": 'rel="next" URL of the next page',
                            }
                        },
                    },
                    "400": _error("Bad query parameter or cursor."),
                    "503": _error("The database is unavailable."),
                },
            },
        },
        "/api/workflows/events": {
            "get": {
                "summary": "Live changes of one list page (Server-Sent Events)",
                "description": (
                    "Takes GET /api/workflows's query parameters. `event: list` carries"
                    " {snapshot, workflows, removed, order, next}: a snapshot first, then the"
                    " rows that changed; `event: queues` carries GET /api/queues's body when it"
                    " changes. Last-Event-ID resumes after that event on the same API process,"
                    " else a snapshot starts the stream."
                ),
                "operationId": "streamWorkflowList",
                "parameters": [*list_params, _ACCESS_TOKEN_PARAM],
                "responses": {
                    "200": _event_stream("List snapshots and changes."),
                    "400": _error("A bad query parameter."),
                },
            }
        },
        "/api/workflows/batch": {
            "post": {
                "summary": "Enqueue up to 1,000 workflows in one transaction (all or nothing)",
                "operationId": "enqueueBatch",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref["BatchRequest"]}},
                },
                "responses": {
                    "202": _json(ref["BatchResponse"], "Enqueued (or replayed), in item order."),
                    "400": _error("Malformed JSON."),
                    "409": _error("An item's idempotency_key was used for a different item."),
                    "413": _error("Body too large."),
                    "415": _error("Content-Type is not application/json."),
                    "422": _error("An item is invalid: `index` and `field` name it."),
                    "503": _error("The database is unavailable."),
                },
            }
        },
        **{
            f"/api/workflows/{t.name}": {"post": _typed_enqueue(t.name, t.description)}
            for t in catalogue
        },
        "/api/workflow-types": {
            "get": {
                "summary": "The declared workflow types, with their input schemas",
                "operationId": "listWorkflowTypes",
                "responses": {
                    "200": _json({"type": "array", "items": ref["WorkflowType"]}, "Every type."),
                },
            }
        },
        "/api/workflows/{workflow_id}": {
            "get": {
                "summary": "One workflow with its progress",
                "operationId": "getWorkflow",
                "parameters": [_WORKFLOW_ID_PARAM],
                "responses": {
                    "200": _json(ref["WorkflowDetail"], "The workflow."),
                    "404": _error("No such workflow."),
                    "503": _error("The database is unavailable."),
                },
            }
        },
        "/api/workflows/{workflow_id}/events": {
            "get": {
                "summary": "Live state of one workflow (Server-Sent Events)",
                "description": (
                    "Each `data:` is the workflow as GET /api/workflows/{workflow_id} returns it,"
                    " sent now and after each change; the stream ends after a terminal status."
                    " Send Last-Event-ID to get only a state you have not seen (204 if it was"
                    " the final one). A comment line is sent every STREAM_HEARTBEAT_SECONDS."
                ),
                "operationId": "streamWorkflowEvents",
                "parameters": [_WORKFLOW_ID_PARAM, _ACCESS_TOKEN_PARAM],
                "responses": {
                    "200": _event_stream("Workflow states."),
                    "204": {"description": "Last-Event-ID is the final state: nothing to send."},
                    "404": _error("No such workflow."),
                },
            }
        },
        "/api/workflows/{workflow_id}/cancel": {
            "post": {"summary": "Cancel an unfinished workflow", "operationId": "cancelWorkflow"}
            | workflow_action
        },
        "/api/workflows/{workflow_id}/resume": {
            "post": {
                "summary": "Resume a cancelled workflow from its last completed step",
                "operationId": "resumeWorkflow",
            }
            | workflow_action
        },
        "/api/queues": {
            "get": {
                "summary": "Per-queue counts",
                "operationId": "listQueues",
                "responses": {
                    "200": _json({"type": "array", "items": ref["Queue"]}, "Every queue."),
                    "503": _error("The database is unavailable."),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "operationId": "healthz",
                "responses": {"200": _json(ref["Health"], "The process answers.")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database answers and is migrated",
                "operationId": "readyz",
                "responses": {
                    "200": _json(ref["Health"], "Ready."),
                    "503": _json(ref["Health"], "Not ready."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/": {
            "get": {
                "summary": "The web page",
                "operationId": "page",
                "responses": {
                    "200": {
                        "description": "HTML.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": _json({"type": "object"}, "OpenAPI 3.1."),
                },
            }
        },
    }
    paths.update(schedule_paths())
    paths.update(openapi_ops.paths())
    for path, item in paths.items():
        if path.startswith("/api/"):
            for operation in item.values():
                # Only enforced when the server has API tokens configured.
                operation["security"] = [{}, {"bearer": []}]
                operation["responses"]["401"] = _error("API tokens are configured: bad token.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "queue-worker API",
            "version": __version__,
            "description": "Enqueue DBOS workflows and watch their status and progress.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(build_spec(request.app.state.catalogue))


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
