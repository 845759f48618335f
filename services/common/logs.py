"""Structured logging for both services: one JSON object per line (or plain text on a laptop)."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str, fmt: str, service: str) -> None:
    """Route every logger (ours, DBOS's, uvicorn's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # DBOS and uvicorn attach their own handlers; let their records reach ours instead, once.
    for name in ("dbos", "uvicorn", "uvicorn.error", "uvicorn.access"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers[:] = []
        lib_logger.propagate = True
    # One line per HTTP request is noise at info level; errors are logged where they are handled
    # (services/api/errors.py), and request counts and latencies are metrics.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
