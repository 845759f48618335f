"""DATABASE_POOLER=pgbouncer-session as the worker and the migrate command take it (the real
behaviour through a real PgBouncer is in tests/integration/test_pgbouncer.py)."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.migrate import migrate
from services.common.settings import load_settings
from services.worker.runner import dbos_config

PG = "postgresql://app@pgbouncer:6432/qw"


def test_behind_the_pooler_dbos_gets_a_null_pool_and_no_pool_size() -> None:
    config = dbos_config(load_settings({"DBOS_SYSTEM_DATABASE_URL": PG, **_POOLED}))
    assert config["sys_db_pool_size"] is None  # NullPool takes no size
    kwargs = config["db_engine_kwargs"]
    assert kwargs is not None
    assert kwargs["poolclass"] is sa.NullPool
    # No libpq `options`: PgBouncer 1.18 refuses the startup parameter.
    assert "options" not in kwargs["connect_args"]


def test_direct_dbos_keeps_its_sized_pool() -> None:
    config = dbos_config(load_settings({"DBOS_SYSTEM_DATABASE_URL": PG}))
    assert config["sys_db_pool_size"] == 6  # 4 + ceil(10 / 5), services/worker/pools.py
    assert config["db_engine_kwargs"] is None


def test_migrate_refuses_to_go_through_the_pooler() -> None:
    # Exits before connecting: the host does not exist.
    assert migrate(load_settings({"DBOS_SYSTEM_DATABASE_URL": PG, **_POOLED})) == 2


_POOLED = {"DATABASE_POOLER": "pgbouncer-session"}
