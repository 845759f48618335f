"""The /api/schedules part of /openapi.json (services/api/openapi.py merges it in): a schedule's
body takes a declared type and that type's input, so its schema follows the catalogue too."""

from __future__ import annotations

from typing import Any

from services.api.schedule_validation import (
    MAX_BACKFILL_RUNS,
    MAX_CRON_LENGTH,
    MAX_TIMEZONE_LENGTH,
    NAME,
)
from services.common.catalogue import Catalogue

_NAME_PARAM = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}
_TIME = {"type": "string", "format": "date-time"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def schedule_schemas(catalogue: Catalogue) -> dict[str, Any]:
    by_type = [
        {
            "if": {"required": ["type"], "properties": {"type": {"const": t.name}}},
            "then": {"properties": {"input": _ref(f"Input.{t.name}")}},
        }
        for t in catalogue
    ]
    fields: dict[str, Any] = {
        "name": {"type": "string", "pattern": NAME.pattern, "maxLength": 100},
        "type": {"type": "string", "enum": list(catalogue.types)},
        "input": {"type": "object"},
        "cron": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_CRON_LENGTH,
            "description": (
                "5 fields (minute hour day month weekday), or 6 with seconds first: "
                "'*/10 * * * * *' fires every 10 seconds."
            ),
        },
        "timezone": {
            "type": ["string", "null"],
            "maxLength": MAX_TIMEZONE_LENGTH,
            "description": "IANA time zone the cron is read in (default UTC).",
        },
        "automatic_backfill": {
            "type": "boolean",
            "default": False,
            "description": "When a worker starts, run the times missed since the last firing.",
        },
    }
    return {
        "ScheduleRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "type", "input", "cron"],
            "properties": fields,
            "allOf": by_type,
        },
        "Schedule": {
            "type": "object",
            "required": [*fields, "status", "last_fired_at", "next_run_at"],
            "properties": {
                **fields,
                # A schedule written outside this API may carry no type or input of ours.
                "type": {"type": ["string", "null"]},
                "input": {"type": ["object", "null"]},
                "name": {"type": "string"},
                "cron": {"type": "string"},
                "timezone": {"type": ["string", "null"]},
                "status": {"type": "string", "enum": ["ACTIVE", "PAUSED"]},
                "last_fired_at": {"type": ["string", "null"], "format": "date-time"},
                "next_run_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "BackfillRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start", "end"],
            "properties": {"start": _TIME, "end": _TIME},
            "description": (
                f"RFC 3339 times with offsets, end in the past; at most {MAX_BACKFILL_RUNS} "
                "cron times strictly between them."
            ),
        },
        "TriggerResponse": {
            "type": "object",
            "required": ["workflow_id", "url"],
            "properties": {"workflow_id": {"type": "string"}, "url": {"type": "string"}},
        },
    }


def _action(summary: str, operation_id: str, status: str, schema: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "operationId": operation_id,
        "parameters": [_NAME_PARAM],
        "responses": {
            status: _json(_ref(schema), "Done."),
            "404": _error("No such schedule."),
            "503": _error("The database is unavailable."),
        },
    }


def schedule_paths() -> dict[str, Any]:
    body_errors = {
        "400": _error("Malformed JSON."),
        "413": _error("Body too large."),
        "415": _error("Content-Type is not application/json."),
        "422": _error("A field is missing, unknown or invalid: `field` names it."),
        "503": _error("The database is unavailable."),
    }
    backfill = _action(
        "Enqueue the runs a window missed", "backfillSchedule", "202", "BatchResponse"
    )
    backfill["responses"] = {
        "202": _json(_ref("BatchResponse"), "The runs' workflow ids, in time order."),
        "404": _error("No such schedule."),
        **body_errors,
    }
    backfill["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref("BackfillRequest")}},
    }
    backfill["responses"]["409"] = _error("No worker has started yet to run it.")
    trigger = _action("Enqueue one run now", "triggerSchedule", "202", "TriggerResponse")
    trigger["responses"]["409"] = _error("No worker has started yet to run it.")
    delete = _action("Delete a schedule", "deleteSchedule", "204", "Schedule")
    delete["responses"]["204"] = {"description": "Deleted."}
    return {
        "/api/schedules": {
            "post": {
                "summary": "Create a cron schedule of a declared workflow type",
                "operationId": "createSchedule",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ScheduleRequest")}},
                },
                "responses": {
                    "201": _json(_ref("Schedule"), "Created; the workers pick it up."),
                    "409": _error("A schedule with this name exists."),
                    **body_errors,
                },
            },
            "get": {
                "summary": "Every schedule, by name",
                "operationId": "listSchedules",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Schedule")}, "Every schedule."),
                    "400": _error("Query parameters are not accepted."),
                    "503": _error("The database is unavailable."),
                },
            },
        },
        "/api/schedules/{name}": {
            "get": _action("One schedule", "getSchedule", "200", "Schedule"),
            "delete": delete,
        },
        "/api/schedules/{name}/pause": {
            "post": _action("Stop firing (until resumed)", "pauseSchedule", "200", "Schedule")
        },
        "/api/schedules/{name}/resume": {
            "post": _action("Fire on the cron again", "resumeSchedule", "200", "Schedule")
        },
        "/api/schedules/{name}/trigger": {"post": trigger},
        "/api/schedules/{name}/backfill": {"post": backfill},
    }
