"""Decoding what DBOS stored for a workflow or a step (inputs, outputs, errors) into JSON values.

DBOS 3.4 keeps a workflow's inputs in `workflow_input` and its output and error in
`workflow_output` (older rows still have them in `workflow_status`), each serialized with the
workflow's `serialization`: "portable_json" for everything this API enqueues, DBOS's pickle for
workflows started by other clients. The API shows them as JSON; a value that is not JSON after
decoding (a pickled object) is shown as its repr, and a very large one is cut.
"""

from __future__ import annotations

import json
from typing import Any

from dbos import PortableWorkflowError

from services.common.dbos_internals import (
    DefaultSerializer,
    deserialize_args,
    deserialize_exception,
    deserialize_value,
)

# A step's or workflow's output can be large; the API shows the start of it.
MAX_SHOWN_CHARS = 10_000


def _json_safe(value: Any) -> Any:
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = ""
        value = repr(value)
    if len(text) > MAX_SHOWN_CHARS or (isinstance(value, str) and len(value) > MAX_SHOWN_CHARS):
        shown = text if text else value
        return {"truncated": True, "start": shown[:MAX_SHOWN_CHARS]}
    return value


def decode_value(raw: str | None, serialization: str | None) -> Any:
    """An output (or event value) as a JSON value; None when there is none."""
    if raw is None:
        return None
    try:
        return _json_safe(deserialize_value(raw, serialization, DefaultSerializer()))
    except Exception:  # a foreign or corrupt value must not fail the request
        return {"undecodable": True, "serialization": serialization}


def decode_inputs(raw: str | None, serialization: str | None) -> Any:
    """A workflow's input: its keyword arguments as an object when it has no positional ones
    (every workflow this API enqueues), else {"args": [...], "kwargs": {...}}."""
    if raw is None:
        return None
    try:
        inputs = deserialize_args(raw, serialization, DefaultSerializer())
    except Exception:
        return {"undecodable": True, "serialization": serialization}
    args, kwargs = list(inputs["args"]), dict(inputs["kwargs"])
    return _json_safe(kwargs if not args else {"args": args, "kwargs": kwargs})


def decode_error(raw: str | None, serialization: str | None) -> str | None:
    """An exception as "Type: message". A portable error keeps the original type's name
    (DBOS decodes it as PortableWorkflowError, whose own name says nothing)."""
    if raw is None:
        return None
    try:
        exc = deserialize_exception(raw, serialization, DefaultSerializer())
    except Exception:
        return raw[:1000]
    if exc is None:
        return None
    name = exc.name if isinstance(exc, PortableWorkflowError) else type(exc).__name__
    return f"{name}: {exc}"[:1000]
