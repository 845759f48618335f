"""The hostile suites' one stack fixture: an API and a worker per module, on Postgres and on
SQLite (tests/hostile/stacks.py says how it is set up for them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.stacks import running_stack
from tests.support import Stack


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    workdir = tmp_path_factory.mktemp(f"{module}-{request.param}")
    with running_stack(request, request.param, workdir) as s:
        yield s
