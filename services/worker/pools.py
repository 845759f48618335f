"""How many Postgres connections a worker holds, at most: its share of max_connections.

A worker opens three kinds of connection, none of them more than once per slot:
- DBOS's pool (WORKER_DB_POOL_SIZE; by default `dbos_pool_size` below);
- our own pool, OWN_POOL_SIZE, for readiness, metrics reads, heartbeats and recovery sweeps;
- the wake-up listener's one LISTEN connection (Postgres with WORKER_WAKE_ON_NOTIFY only).
The chart adds the same terms up per pod (templates/_budget.tpl) and refuses to render a release
whose worst case passes database.maxConnections; keep the two in step (a chart test checks them).
"""

from __future__ import annotations

from services.common.settings import Settings

OWN_POOL_SIZE = 2
LISTENER_CONNECTIONS = 1


def default_dbos_pool_size(concurrency: int) -> int:
    """4 + ceil(concurrency / 5). A workflow holds a connection only while DBOS writes a step's
    output or an event (milliseconds per step), and DBOS's listener holds one for good; waiting
    threads queue on the pool instead of opening connections the database must budget for."""
    return 4 + -(-concurrency // 5)


def dbos_pool_size(settings: Settings) -> int:
    return settings.worker_db_pool_size or default_dbos_pool_size(settings.worker_concurrency)


# DBOS opens one connection beside its pool (measured: pg_stat_activity shows pool size + 1 for
# application_name dbos_transact under load).
DBOS_EXTRA_CONNECTIONS = 1


def connections_per_worker(dbos_pool: int) -> int:
    """The most connections one worker pod holds: what the chart's budget counts per worker."""
    return dbos_pool + DBOS_EXTRA_CONNECTIONS + OWN_POOL_SIZE + LISTENER_CONNECTIONS


# Behind PgBouncer in session mode (DATABASE_POOLER) a worker's pools open short client sessions,
# but two stay open for good and each pins one of PgBouncer's server connections: DBOS's
# notification listener and our wake-up listener. The chart sizes PgBouncer's pool past them.
PINNED_SESSIONS_PER_WORKER = 2
