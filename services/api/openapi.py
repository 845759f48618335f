"""/openapi.json: the API's contract, written by hand so it says exactly what the code does.

tests/integration/test_api_contract.py checks every route is described and every response the
tests see validates against the schema given here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services import __version__
from services.api.validation import DEFAULT_LIMIT, MAX_LIMIT, MAX_PRIORITY, MAX_STEP_SECONDS
from services.common.names import WORKFLOW_STATUSES

_TIME = {"type": ["string", "null"], "format": "date-time"}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR_REF, description)


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
}


def build_spec(max_num_steps: int) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "EnqueueRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["num_steps"],
            "properties": {
                "num_steps": {"type": "integer", "minimum": 1, "maximum": max_num_steps},
                "step_seconds": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_STEP_SECONDS,
                    "description": "Seconds per demo step (default: DEFAULT_STEP_SECONDS).",
                },
                "priority": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "maximum": MAX_PRIORITY,
                    "description": "Lower runs first; a workflow without priority runs before any.",
                },
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
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
        },
    }
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
    paths: dict[str, Any] = {
        "/api/workflows": {
            "post": {
                "summary": "Enqueue a workflow",
                "operationId": "enqueueWorkflow",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            # Printable ASCII; HTTP strips spaces at either end.
                            "pattern": "^[!-~]([ -~]*[!-~])?$",
                        },
                        "description": "A retry with the same key and body gets the same workflow.",
                    }
                ],
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
                "parameters": [
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
                ],
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
    return JSONResponse(build_spec(request.app.state.settings.max_num_steps))


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
