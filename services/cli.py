"""The `queue-worker` command: dev, api, worker, migrate, recover, drainer, and the HTTP client
(enqueue, ls, show, watch, cancel, resume, retry, fork: services/client/).

Configuration comes from the environment (see services/common/settings.py) and these flags. A bad
value exits with status 2 and one line saying what is wrong.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from services.client.commands import COMMANDS as CLIENT_COMMANDS
from services.client.commands import add_client_commands, run_client
from services.common.settings import Settings, SettingsError, load_settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message is what the user needs.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _port(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {raw!r} (expected 1..65535)")
    return int(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="queue-worker",
        description="Durable background work: an HTTP API and a worker for DBOS workflows.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    dev = sub.add_parser("dev", help="run the API and one worker (SQLite unless configured)")
    dev.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    dev.add_argument("--port", type=_port, default=8000, help="API port (default 8000)")
    dev.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="worker health/metrics port (default 9000, or a free one if 9000 is taken)",
    )

    api = sub.add_parser("api", help="serve the HTTP API and web page")
    api.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 (a container serves on every interface)
        help="address to bind (default 0.0.0.0)",
    )
    api.add_argument("--port", type=_port, default=8000, help="port (default 8000)")

    worker = sub.add_parser("worker", help="dequeue and run workflows")
    worker.add_argument(
        "--metrics-host",
        default="0.0.0.0",  # noqa: S104
        help="health/metrics address (default 0.0.0.0)",
    )
    worker.add_argument(
        "--metrics-port", type=_port, default=9000, help="health/metrics port (default 9000)"
    )

    migrate = sub.add_parser("migrate", help="create or upgrade the system schema, then exit")
    migrate.add_argument(
        "--app-role",
        default=None,
        help="Postgres role the services run as: granted access to the dbos schema",
    )
    recover = sub.add_parser(
        "recover", help="re-enqueue the PENDING workflows of a dead worker (operator command)"
    )
    recover.add_argument("--executor-id", required=True, help="the dead worker's executor id")
    recover.add_argument(
        "--to-version",
        default=None,
        help="also move them to this application version (for a retired version's orphans)",
    )
    recover.add_argument(
        "--force", action="store_true", help="even if the worker's heartbeat is still fresh"
    )
    drainer = sub.add_parser(
        "drainer",
        help="run workers of old application versions until their work is done (Kubernetes)",
    )
    drainer.add_argument(
        "--metrics-host",
        default="0.0.0.0",  # noqa: S104
        help="health/metrics address (default 0.0.0.0)",
    )
    drainer.add_argument(
        "--metrics-port", type=_port, default=9000, help="health/metrics port (default 9000)"
    )
    add_client_commands(sub)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "api":
        from services.api.serve import serve_api

        return serve_api(settings, host=args.host, port=args.port)
    if args.command == "worker":
        from services.worker.runner import run_worker

        return run_worker(settings, metrics_host=args.metrics_host, metrics_port=args.metrics_port)
    if args.command == "migrate":
        from services.common.migrate import migrate

        return migrate(settings, app_role=args.app_role)
    if args.command == "recover":
        from services.common.recover import recover

        return recover(
            settings, executor_id=args.executor_id, to_version=args.to_version, force=args.force
        )
    if args.command == "drainer":
        from services.drain.runner import run_drainer

        return run_drainer(settings, metrics_host=args.metrics_host, metrics_port=args.metrics_port)
    from services.dev import run_dev

    return run_dev(settings, host=args.host, port=args.port, metrics_port=args.metrics_port)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in CLIENT_COMMANDS:
        # The client speaks HTTP only: the server's settings (database URL...) are not its own.
        return run_client(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"queue-worker: error: {exc}", file=sys.stderr)
        return 2
    return _run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
