"""A real PgBouncer (Debian's, 1.18 on bookworm) in front of the test Postgres, for the pooler
tests and the bench: its own config in a throwaway directory, a free loopback port, stopped by PID.

scripts/test-deps.d/60-pgbouncer.sh installs it. PgBouncer refuses to run as root, so as root it
is started with `-u` and an unprivileged user (postgres, else nobody).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests.support import ChildProcess, free_port, wait_for

SBIN = "/usr/sbin/pgbouncer"  # Debian installs it outside a normal user's PATH


def pgbouncer_bin() -> str:
    found = shutil.which("pgbouncer") or (SBIN if os.access(SBIN, os.X_OK) else None)
    if found is None:
        pytest.fail("pgbouncer not found: run scripts/test-deps.d/60-pgbouncer.sh")
    return found


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run pgbouncer as")


class PgBouncer:
    """One PgBouncer process forwarding every database name to the server of `upstream_url`."""

    def __init__(
        self,
        upstream_url: str,
        *,
        pool_mode: str = "session",
        pool_size: int = 5,
        max_client_conn: int = 500,
    ) -> None:
        self.upstream = sa.make_url(upstream_url)
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are 0700 root, unreadable once PgBouncer
        # drops to an unprivileged user.
        self.dir = Path(tempfile.mkdtemp(prefix="qw-pgbouncer-"))
        self.dir.chmod(0o755)
        user = self.upstream.username or "postgres"
        password = self.upstream.password or ""
        server = f"host={self.upstream.host or '127.0.0.1'} port={self.upstream.port or 5432}"
        if password:
            server += f" password={password}"
        (self.dir / "users.txt").write_text(f'"{user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = {server}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'users.txt'}\n"
            f"admin_users = {user}\n"
            f"pool_mode = {pool_mode}\n"
            f"default_pool_size = {pool_size}\n"
            "reserve_pool_size = 0\n"
            f"max_client_conn = {max_client_conn}\n"
            # Clients wait for a server connection rather than fail (the default is 120 s).
            "query_wait_timeout = 60\n"
            "logfile =\n"
        )
        for f in self.dir.iterdir():
            f.chmod(0o644)
        self.user = user
        args = [pgbouncer_bin()]
        if os.geteuid() == 0:
            args += ["-u", _unprivileged_user()]
        self.process = ChildProcess(
            "pgbouncer", [*args, str(self.dir / "pgbouncer.ini")], {}, self.dir / "pgbouncer.log"
        )

        def listening() -> bool:
            self.process.check_alive()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, timeout=15, interval=0.05, what=f"pgbouncer to listen on {self.port}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.process.log()

    def url(self, database_url: str) -> str:
        """`database_url`'s database, reached through this PgBouncer."""
        url = sa.make_url(database_url).set(host="127.0.0.1", port=self.port, password=None)
        return url.render_as_string(hide_password=False)

    def show(self, what: str) -> list[dict[str, Any]]:
        """SHOW POOLS / CLIENTS / SERVERS on PgBouncer's admin console, as dicts."""
        admin = f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        # The admin console speaks only the simple query protocol.
        with psycopg.connect(admin, autocommit=True, prepare_threshold=None) as conn:
            cur = conn.cursor()
            cur.execute(f"SHOW {what}".encode(), prepare=False)
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def clients(self, database: str) -> int:
        """Client connections to `database`: served plus waiting for a server connection."""
        return sum(
            int(p["cl_active"]) + int(p["cl_waiting"])
            for p in self.show("POOLS")
            if p["database"] == database
        )

    def stop(self) -> None:
        proc = self.process.proc
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: a fast exit, clients dropped
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.process.kill()  # if it is still there; closes the log either way
        shutil.rmtree(self.dir, ignore_errors=True)


def server_connections(admin_url: str, database: str) -> int:
    """Postgres's own count of client backends connected to `database` (pg_stat_activity; an
    autovacuum worker on the database would show there too)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0
