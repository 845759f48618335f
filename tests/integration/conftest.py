"""Fixtures several integration modules share. A module that needs another stack (other
environment, other scope) defines its own `stack`, which then also feeds `http` and `spec`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dbos import DBOSClient

from services.common.names import APP_NAME
from services.common.sql import WorkflowQueries, create_engine
from tests.conftest import running_stack
from tests.support import Stack


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A real API and worker per test module, on each database."""
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    with running_stack(request, request.param, workdir, MAX_NUM_STEPS="50") as s:
        yield s


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client


@pytest.fixture(scope="module")
def spec(stack: Stack) -> dict[str, Any]:
    with stack.client() as client:
        body: dict[str, Any] = client.get("/openapi.json").json()
    return body


@pytest.fixture
def queries(database_url: str) -> Iterator[WorkflowQueries]:
    """Our read queries on a freshly migrated database (no worker)."""
    q = WorkflowQueries(create_engine(database_url))
    yield q
    q.engine.dispose()


@pytest.fixture
def client(database_url: str) -> Iterator[DBOSClient]:
    """A DBOSClient on that database, to enqueue as the API does."""
    c = DBOSClient(system_database_url=database_url, application_name=APP_NAME)
    yield c
    c.destroy()
