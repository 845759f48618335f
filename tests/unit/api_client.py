"""The API in this process, for the fast inner loop (`make test-fast`): Starlette's TestClient
over the real app factory, on a real SQLite file copied from the suite's migrated template
(tests/conftest.py). No worker runs, so enqueued workflows stay ENQUEUED; tests/integration/
covers the same routes with real processes, on Postgres too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from services.api.app import create_app
from services.common.settings import load_settings
from tests.conftest import new_sqlite_database


class ApiClient(TestClient):
    """A TestClient that knows the database its app runs on."""

    database_url = ""


@contextmanager
def api_client(template: Path, directory: Path, **env: str) -> Iterator[ApiClient]:
    """An API (lifespan and all) on a fresh SQLite copy; `env` as the process would read it."""
    url = new_sqlite_database(template, directory)
    settings = load_settings({"DBOS_SYSTEM_DATABASE_URL": url, "METRICS_CACHE_SECONDS": "0", **env})
    with ApiClient(create_app(settings), raise_server_exceptions=True) as client:
        client.database_url = url
        yield client


def workflow_rows(client: ApiClient) -> int:
    """Rows in DBOS's workflow table: what a refused request must not have written."""
    engine = sa.create_engine(client.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM workflow_status")).scalar_one())
    finally:
        engine.dispose()
