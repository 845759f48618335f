"""What idle workers cost the database: statements (from the server's log, where this process can
read it) and transactions (pg_stat_database) of a few databases over a window of time. Used by
the idle-cost figures of bench/latency.py and bench/wake.py."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.common import Bench, connect, progress

_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}
# Debian's log_line_prefix is '%m [%p] %q%u@%d ': the pid and the database are on every line.
_STATEMENT = re.compile(
    r"(?:\[(?P<pid>\d+)\] )?\S*@(?P<db>\S+) LOG:  (?:statement|execute [^:]*): (?P<sql>.*)$"
)


def server_log(conn: psycopg.Connection[Any]) -> Path | None:
    """The server's log file, if this process can read it."""
    row = conn.execute("SELECT pg_current_logfile()").fetchone()
    candidates: list[Path] = []
    if row and row[0]:
        data_dir = conn.execute("SHOW data_directory").fetchone()
        path = Path(str(row[0]))
        if not path.is_absolute() and data_dir is not None:
            path = Path(str(data_dir[0])) / path
        candidates.append(path)
    # Debian's default: no logging collector, stderr redirected by pg_ctlcluster.
    candidates += sorted(
        Path("/var/log/postgresql").glob("postgresql-*-main.log"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in candidates:
        try:
            with path.open("rb"):
                return path
        except OSError:
            continue
    return None


def count_statements(
    text: str, databases: set[str], pids: set[int] | None = None
) -> dict[str, Counter[str]]:
    """Statements logged per database (only from `pids`, when given and the log shows pids)."""
    counts: dict[str, Counter[str]] = {d: Counter() for d in databases}
    for line in text.splitlines():
        m = _STATEMENT.search(line)
        if m is None or m.group("db") not in counts:
            continue
        if pids is not None and m.group("pid") and int(m.group("pid")) not in pids:
            continue
        sql = " ".join(m.group("sql").split())[:90]
        counts[m.group("db")][sql] += 1
    return counts


def transactions(admin_url: str, names: list[str]) -> dict[str, int]:
    with connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = ANY(%s)",
            (names,),
        ).fetchall()
    return {str(d): int(n) for d, n in rows}


def backend_pids(admin_url: str, name: str) -> set[int]:
    with connect(admin_url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        return {int(r[0]) for r in rows}


def summarize(c: Counter[str], seconds: float) -> dict[str, Any]:
    control = sum(n for sql, n in c.items() if sql.upper() in _CONTROL)
    pings = c.get(";", 0)  # SQLAlchemy's pool_pre_ping: an empty statement per checkout
    total = sum(c.values())
    return {
        "statements": total,
        "statements_per_s": total / seconds,
        "begins_per_s": c.get("BEGIN", 0) / seconds,
        "pre_pings_per_s": pings / seconds,
        "work_statements_per_s": (total - control - pings) / seconds,
        "top_statements_per_s": {sql: round(n / seconds, 2) for sql, n in c.most_common(8)},
    }


@dataclass
class StatementLog:
    """Logs every statement of some databases (kind -> database name) and reads them back."""

    bench: Bench
    names: dict[str, str]

    def __post_init__(self) -> None:
        for name in self.names.values():
            self.bench.admin_exec(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
        with connect(self.bench.admin_url) as conn:
            self.path = server_log(conn)

    def offset(self) -> int:
        return self.path.stat().st_size if self.path else 0

    def read_from(self, offset: int) -> str:
        if self.path is None:
            return ""
        with self.path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def watch_idle(self, seconds: float, what: str) -> tuple[float, dict[str, dict[str, Any]]]:
        """The seconds watched and, per kind, transactions/s and (when the server's log is
        readable here) the statement summary."""
        offset = self.offset()
        names = list(self.names.values())
        x0 = transactions(self.bench.admin_url, names)
        t0 = time.monotonic()
        progress(f"idle: watching {what} for {seconds:.0f}s")
        time.sleep(seconds)
        x1 = transactions(self.bench.admin_url, names)
        elapsed = time.monotonic() - t0
        counts = count_statements(self.read_from(offset), set(names))
        out: dict[str, dict[str, Any]] = {}
        for kind, name in self.names.items():
            entry: dict[str, Any] = {
                "transactions_per_s": (x1.get(name, 0) - x0.get(name, 0)) / elapsed,
            }
            if self.path:
                entry.update(summarize(counts[name], elapsed))
            out[kind] = entry
        return elapsed, out
