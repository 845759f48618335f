"""How each client command prints its result: plain text for people (ids alone where a script
would capture them), or the API's JSON unchanged with --output json."""

from __future__ import annotations

import json
from typing import Any


def _progress(wf: dict[str, Any]) -> str:
    done, total = wf.get("steps_completed"), wf.get("num_steps")
    return "-" if total is None else f"{done if done is not None else 0}/{total}"


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("ID", "STATUS", "PROGRESS", "NAME", "QUEUE", "CREATED")
    lines = [header] + [
        (
            str(wf.get("workflow_id")),
            str(wf.get("workflow_status")),
            _progress(wf),
            str(wf.get("workflow_name") or "-"),
            str(wf.get("queue_name") or "-"),
            str(wf.get("created_at") or "-"),
        )
        for wf in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def show(command: str, result: Any, *, json_output: bool) -> None:
    if json_output:
        print(json.dumps(result, indent=2))
    elif command in ("enqueue", "retry", "fork"):
        print(result["workflow_id"])
    elif command == "ls":
        print(_table(result) if result else "no workflows")
    elif command == "show":
        for key, value in result.items():
            print(f"{key}: {'-' if value is None else value}")
    else:  # cancel, resume
        print(f"{result['workflow_id']}\t{result['workflow_status']}")
