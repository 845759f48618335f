"""The workflow catalogue: what a declared workflow type is, and how its input is checked.

A WorkflowType is plain data (name, queue, description, input JSON Schema), so the API can read it
without importing worker code; services/common/workflow_types.py declares the types, the worker
registers their queues and checks it runs a workflow for each, and the API validates requests,
lists the types and generates its OpenAPI document from them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

TYPE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Path segments the API serves under /api/workflows/ itself; a type cannot take them.
RESERVED_NAMES = frozenset({"batch"})


class InputError(ValueError):
    """Input that does not match a type's schema. `field` names where (e.g. "a.b[2]"), and the
    message is the field followed by `detail` ("num_steps must be an integer from 1 to 50")."""

    def __init__(self, field: str | None, detail: str) -> None:
        self.field = field
        self.detail = detail
        self.message = f"{field} {detail}" if field else detail
        super().__init__(self.message)

    def under(self, prefix: str) -> InputError:
        """The same error with its field placed under `prefix` (e.g. "workflows[3].input")."""
        if not self.field:
            return InputError(prefix, self.detail)
        joined = f"{prefix}[{self.field}]" if self.field[0] == "[" else f"{prefix}.{self.field}"
        return InputError(joined, self.detail)


@dataclass(frozen=True)
class WorkflowType:
    """One enqueueable workflow. `workflow_name` is the DBOS name the worker registers it under
    (defaults to `name`); the input object is passed to it as keyword arguments."""

    name: str
    queue: str
    description: str
    input_schema: Mapping[str, Any]
    workflow_name: str = ""
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not TYPE_NAME.match(self.name) or self.name in RESERVED_NAMES:
            raise ValueError(f"workflow type name {self.name!r} is not allowed")
        if self.input_schema.get("type") != "object":
            raise ValueError(f"{self.name}: the input schema must describe an object")
        Draft202012Validator.check_schema(self.input_schema)
        if not self.workflow_name:
            object.__setattr__(self, "workflow_name", self.name)
        object.__setattr__(self, "_validator", Draft202012Validator(self.input_schema))

    def validate(self, value: Any) -> dict[str, Any]:
        """The input with top-level defaults filled in; InputError naming the first bad field."""
        if not isinstance(value, dict):
            raise InputError(None, "must be a JSON object")
        errors = sorted(self._validator.iter_errors(value), key=_error_order)
        if errors:
            raise _input_error(errors[0])
        filled = dict(value)
        for name, prop in self.input_schema.get("properties", {}).items():
            if name not in filled and isinstance(prop, dict) and "default" in prop:
                filled[name] = prop["default"]
        return filled

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "workflow_name": self.workflow_name,
            "queue": self.queue,
            "description": self.description,
            "input_schema": dict(self.input_schema),
        }


class Catalogue:
    """The declared types by name, in declaration order."""

    def __init__(self, types: Iterable[WorkflowType], default: str) -> None:
        self.types: dict[str, WorkflowType] = {}
        for t in types:
            if t.name in self.types:
                raise ValueError(f"workflow type {t.name!r} is declared twice")
            self.types[t.name] = t
        if default not in self.types:
            raise ValueError(f"the default workflow type {default!r} is not declared")
        self.default = default

    def __iter__(self) -> Any:
        return iter(self.types.values())

    def get(self, name: str) -> WorkflowType | None:
        return self.types.get(name)

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(sorted({t.queue for t in self.types.values()}))


def fingerprint(parts: Any) -> str:
    """Identifies a request's content, to tell a retry from a reused Idempotency-Key."""
    canonical = json.dumps(parts, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _error_order(error: ValidationError) -> tuple[int, str]:
    # Shallow errors first (a missing field before a bad value deep inside), then by path.
    return (len(error.absolute_path), "/".join(map(str, error.absolute_path)))


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _num(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _input_error(error: ValidationError) -> InputError:
    where = _path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        missing = [p for p in error.validator_value if p not in instance]
        return InputError(_path([*error.absolute_path, missing[0]]), "is required")
    if error.validator == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        name = _path([*error.absolute_path, extra[0]]) if extra else where
        return InputError(name, "is not a known field")
    kind = schema.get("type")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if where and kind in ("integer", "number") and lo is not None and hi is not None:
        noun = "an integer" if kind == "integer" else "a number"
        return InputError(where, f"must be {noun} from {_num(lo)} to {_num(hi)}")
    return InputError(where or None, f"is invalid: {error.message}" if where else error.message)
