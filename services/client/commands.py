"""The client subcommands: their flags, their calls to the HTTP API, and their exit codes.

Exit codes (README "Command-line client"): 0 done; 1 a watched workflow ended ERROR, CANCELLED
or MAX_RECOVERY_ATTEMPTS_EXCEEDED; 2 bad usage or input the API refused (400, 413, 415, 422);
3 the API could not be reached or failed (connection, timeout, 401/403, 5xx); 4 no such
workflow (404); 5 the workflow's state does not allow it (409). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from services.client import render
from services.client.http import Api, ApiError, ConnectionFailed, workflow_path
from services.client.watch import watch

DEFAULT_URL = "http://localhost:8000"
COMMANDS = ("enqueue", "ls", "show", "watch", "cancel", "resume", "retry", "fork")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_FOUND, EXIT_CONFLICT = range(6)


class UsageError(Exception):
    pass


def _connection_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"API base URL (env QUEUE_WORKER_URL, default {DEFAULT_URL})")
    common.add_argument("--token", help="API bearer token (env QUEUE_WORKER_TOKEN)")
    common.add_argument("--output", choices=("text", "json"), default="text", help="text or json")
    common.add_argument(
        "--timeout", type=_positive_float, default=30.0, help="seconds per request (30)"
    )
    return common


def _positive_int(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"invalid value {raw!r} (expected an integer >= 1)")
    return int(raw)


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid value {raw!r} (expected seconds > 0)")
    return value


def _non_negative_int(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise argparse.ArgumentTypeError(f"invalid value {raw!r} (expected an integer >= 0)")
    return int(raw)


def add_client_commands(sub: Any) -> None:
    """Adds the client subcommands to the `queue-worker` parser's subparsers."""
    common = _connection_flags()
    enq = sub.add_parser("enqueue", parents=[common], help="enqueue a workflow (HTTP API)")
    enq.add_argument("--num-steps", type=_positive_int, help="the demo workflow with N steps")
    enq.add_argument("--step-seconds", type=float, help="demo: seconds per step")
    enq.add_argument("--type", dest="wtype", help="a declared workflow type (see the API)")
    enq.add_argument("--input", help="the type's input, a JSON object")
    enq.add_argument("--priority", type=_positive_int, help="lower runs first")
    enq.add_argument("--idempotency-key", help="a retry with the same key returns the same id")
    ls = sub.add_parser("ls", parents=[common], help="list workflows, newest first (HTTP API)")
    ls.add_argument("--status", help="comma-separated statuses, e.g. PENDING,ENQUEUED")
    ls.add_argument("--queue", help="queue name(s), comma-separated")
    ls.add_argument("--name", help="workflow name(s), comma-separated")
    ls.add_argument("--limit", type=_positive_int, default=20, help="at most this many (20)")
    for name, text in (
        ("show", "one workflow's details"),
        ("cancel", "cancel an unfinished workflow"),
        ("resume", "resume a cancelled workflow"),
        ("retry", "run a failed workflow again"),
    ):
        cmd = sub.add_parser(name, parents=[common], help=f"{text} (HTTP API)")
        cmd.add_argument("workflow_id", metavar="ID")
    fork = sub.add_parser("fork", parents=[common], help="restart a workflow from a step")
    fork.add_argument("workflow_id", metavar="ID")
    fork.add_argument("--start-step", type=_non_negative_int, required=True, help="step to rerun")
    w = sub.add_parser("watch", parents=[common], help="live progress bars until workflows end")
    w.add_argument("workflow_ids", metavar="ID", nargs="+")
    w.add_argument("--no-stream", action="store_true", help="poll instead of the event stream")
    w.add_argument("--poll-seconds", type=_positive_float, default=1.0, help="polling interval (1)")


def _enqueue(api: Api, args: argparse.Namespace) -> Any:
    if (args.num_steps is None) == (args.wtype is None):
        raise UsageError("give either --num-steps N (the demo) or --type T --input JSON")
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    query = {"priority": str(args.priority)} if args.priority else None
    if args.wtype is not None:
        try:
            body = json.loads(args.input) if args.input is not None else {}
        except ValueError as exc:
            raise UsageError(f"--input is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise UsageError("--input must be a JSON object")
        try:
            return api.call(
                "POST", workflow_path(args.wtype), body=body, query=query, headers=headers
            )
        except ApiError as exc:
            if exc.status in (404, 405):  # the path of a type the server does not declare
                raise UsageError(
                    f"unknown workflow type {args.wtype!r} (GET /api/workflow-types lists them)"
                ) from None
            raise
    if args.input is not None:
        raise UsageError("--input goes with --type, not --num-steps")
    demo: dict[str, Any] = {"num_steps": args.num_steps}
    if args.step_seconds is not None:
        demo["step_seconds"] = args.step_seconds
    if args.priority:
        demo["priority"] = args.priority
    return api.call("POST", "/api/workflows", body=demo, headers=headers)


def _ls(api: Api, args: argparse.Namespace) -> Any:
    query = {"limit": str(args.limit)}
    for key in ("status", "queue", "name"):
        if getattr(args, key):
            query[key] = getattr(args, key)
    return api.call("GET", "/api/workflows", query=query)


def _action(name: str) -> Callable[[Api, argparse.Namespace], Any]:
    def run(api: Api, args: argparse.Namespace) -> Any:
        return api.call("POST", workflow_path(args.workflow_id, name))

    return run


def _show(api: Api, args: argparse.Namespace) -> Any:
    return api.call("GET", workflow_path(args.workflow_id))


def _fork(api: Api, args: argparse.Namespace) -> Any:
    body = {"start_step": args.start_step}
    return api.call("POST", workflow_path(args.workflow_id, "fork"), body=body)


HANDLERS: dict[str, Callable[[Api, argparse.Namespace], Any]] = {
    "enqueue": _enqueue,
    "ls": _ls,
    "show": _show,
    "cancel": _action("cancel"),
    "resume": _action("resume"),
    "retry": _action("retry"),
    "fork": _fork,
}


def _exit_code(exc: ApiError) -> int:
    if exc.status == 404:
        return EXIT_NOT_FOUND
    if exc.status == 409:
        return EXIT_CONFLICT
    if exc.status in (400, 413, 415, 422):
        return EXIT_USAGE
    return EXIT_UNAVAILABLE


def _fail(code: int, message: str) -> int:
    print(f"queue-worker: error: {message}", file=sys.stderr)
    return code


def run_client(args: argparse.Namespace) -> int:
    try:
        api = Api(
            args.url or os.environ.get("QUEUE_WORKER_URL") or DEFAULT_URL,
            args.token or os.environ.get("QUEUE_WORKER_TOKEN") or None,
            timeout=args.timeout,
        )
        if args.command == "watch":
            for wid in args.workflow_ids:  # unknown ids: exit 4 before drawing anything
                api.call("GET", workflow_path(wid))
            return watch(
                api,
                list(dict.fromkeys(args.workflow_ids)),
                json_output=args.output == "json",
                stream=not args.no_stream,
                poll_sec=args.poll_seconds,
            )
        result = HANDLERS[args.command](api, args)
    except (UsageError, ValueError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except ApiError as exc:
        return _fail(_exit_code(exc), f"HTTP {exc.status}: {exc}")
    except ConnectionFailed as exc:
        return _fail(EXIT_UNAVAILABLE, str(exc))
    except KeyboardInterrupt:
        return 130
    render.show(args.command, result, json_output=args.output == "json")
    return EXIT_OK
