"""One LISTEN connection per worker that turns the enqueue trigger's NOTIFYs into bell rings.

A daemon thread holds a psycopg connection in autocommit mode, LISTENs on WAKE_CHANNEL
(services/common/wake_sql.py) and rings the bell of the queue named in each payload. When the
connection drops (a Postgres restart, a failover, pg_terminate_backend, a network cut caught by
TCP keepalives) it reconnects with capped exponential backoff and jitter; meanwhile the queue
threads keep polling on their timer, and after each (re)connect every bell rings once, because
anything may have been enqueued during the gap. Idle, the connection costs the server nothing but
a socket: no statements are sent while waiting for notifications.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa

from services.common.wake_sql import WAKE_CHANNEL
from services.worker.wake import WORK, Wakeups

log = logging.getLogger("queue_worker.wake")

# How often the thread looks up from waiting for notifications to check it should stop. No SQL.
_STOP_CHECK_SEC = 1.0
BACKOFF_MIN_SEC = 0.1
BACKOFF_MAX_SEC = 10.0


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (no "+driver" suffix; query options kept)."""
    return (
        sa.make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class WakeListener:
    def __init__(
        self,
        database_url: str,
        wakeups: Wakeups,
        *,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._url = libpq_url(database_url)
        self._wakeups = wakeups
        self._on_state = on_state or (lambda _connected: None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wake-listener", daemon=True)
        self._connected = threading.Event()
        self.connects = 0  # successful (re)connects, for metrics and tests
        self.notifications = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=10,
            application_name="queue-worker-wake",
            # A silently dead peer (no FIN/RST) is found in about a minute, not hours.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        conn.execute(f"LISTEN {WAKE_CHANNEL}")
        return conn

    def _run(self) -> None:
        backoff = BACKOFF_MIN_SEC
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:
                self._failed("wake listener cannot connect; polling covers", exc, backoff)
                backoff = min(BACKOFF_MAX_SEC, backoff * 2)
                continue
            self.connects += 1
            self._connected.set()
            self._on_state(True)
            log.info("wake listener connected", extra={"reconnect": self.connects > 1})
            backoff = BACKOFF_MIN_SEC
            # Whatever was enqueued before LISTEN took effect (start-up, or while disconnected).
            self._wakeups.ring_all(WORK)
            try:
                with conn:
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=_STOP_CHECK_SEC):
                            self.notifications += 1
                            if note.payload:
                                self._wakeups.ring(note.payload, WORK)
            except Exception as exc:
                self._connected.clear()
                self._on_state(False)
                if self._stop.is_set():
                    return
                self._failed("wake listener connection lost; reconnecting", exc, backoff)
                backoff = min(BACKOFF_MAX_SEC, backoff * 2)
        self._connected.clear()

    def _failed(self, message: str, exc: Exception, backoff: float) -> None:
        delay = backoff * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not security)
        log.warning(
            message,
            extra={"error": f"{type(exc).__name__}: {exc}".strip()[:300], "retry_in_sec": delay},
        )
        self._stop.wait(delay)
