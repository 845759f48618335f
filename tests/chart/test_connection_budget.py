"""The chart's Postgres connection budget (templates/_budget.tpl): what it counts, that it agrees
with what a worker opens (services/worker/pools.py), and that it refuses a release past
database.maxConnections with a message naming the values to change."""

from __future__ import annotations

import math

import pytest

from services.worker.pools import connections_per_worker, default_dbos_pool_size
from tests.chart.helm import container, env_of, helm, name, render, template_args

EXTERNAL = {"postgres.enabled": "false", "database.url": "postgresql://app@db:5432/qw"}


def worst_case(
    *,
    max_replicas: int = 10,
    concurrency: int = 10,
    drain_replicas: int = 4,
    api_replicas: int = 2,
    api_pool: int = 10,
) -> int:
    """The budget computed independently of the template: pods (with a 25% rolling surge) times
    the connections each holds."""
    per_worker = connections_per_worker(default_dbos_pool_size(concurrency))
    worker_pods = max_replicas + math.ceil(max_replicas * 0.25) + drain_replicas
    api_pods = api_replicas + math.ceil(api_replicas * 0.25)
    return worker_pods * per_worker + 2 + api_pods * api_pool + 3


def test_worker_pool_matches_the_workers_own_default() -> None:
    for concurrency in (1, 10, 23):
        rendered = render(set_values={"worker.concurrency": str(concurrency)})
        worker = rendered.get("Deployment", name("worker"))
        env = env_of(container(worker["spec"]["template"]["spec"], "worker"))
        assert env["WORKER_DB_POOL_SIZE"]["value"] == str(default_dbos_pool_size(concurrency))


def test_in_cluster_postgres_has_a_fixed_limit_the_budget_is_checked_against() -> None:
    # Fixed, not derived from the workers' values: changing them must not restart the database.
    for values in ({}, {"worker.concurrency": "3", "worker.autoscaling.maxReplicas": "4"}):
        pg = render(set_values=values).get("Deployment", name("postgres"))
        args = container(pg["spec"]["template"]["spec"], "postgres")["args"]
        assert args == ["postgres", "-c", "max_connections=300"]
    assert worst_case() <= 300 - 10  # the defaults fit
    over = helm(*template_args(set_values={"worker.autoscaling.maxReplicas": "40"}), check=False)
    assert over.returncode != 0
    assert "postgres.maxConnections 300" in over.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"worker.autoscaling.maxReplicas": "4", "worker.concurrency": "25"},
        {"api.replicas": "5", "api.dbPoolSize": "3", "worker.drain.maxReplicas": "1"},
    ],
)
def test_the_limit_is_exact(overrides: dict[str, str]) -> None:
    expected = worst_case(
        max_replicas=int(overrides.get("worker.autoscaling.maxReplicas", 10)),
        concurrency=int(overrides.get("worker.concurrency", 10)),
        drain_replicas=int(overrides.get("worker.drain.maxReplicas", 4)),
        api_replicas=int(overrides.get("api.replicas", 2)),
        api_pool=int(overrides.get("api.dbPoolSize", 10)),
    )
    fits = {**EXTERNAL, **overrides, "database.maxConnections": str(expected + 10)}
    assert helm(*template_args(set_values=fits), check=False).returncode == 0
    over = {**fits, "database.maxConnections": str(expected + 9)}
    proc = helm(*template_args(set_values=over), check=False)
    assert proc.returncode != 0
    assert f"at worst this release holds {expected} connections" in proc.stderr


def test_defaults_on_a_stock_server_are_refused_with_what_to_change() -> None:
    proc = helm(*template_args(set_values=EXTERNAL), check=False)
    assert proc.returncode != 0
    message = proc.stderr
    assert "database.maxConnections 100" in message
    for value in ("worker.autoscaling.maxReplicas", "worker.dbPoolSize", "api.dbPoolSize"):
        assert value in message
    assert "PgBouncer" in message


def test_zero_turns_the_check_off() -> None:
    values = {**EXTERNAL, "database.maxConnections": "0"}
    assert helm(*template_args(set_values=values), check=False).returncode == 0


def test_manual_scaling_counts_replicas_not_max_replicas() -> None:
    values = {**EXTERNAL, "worker.autoscaling.enabled": "false", "worker.replicas": "2"}
    expected = worst_case(max_replicas=2)
    fits = {**values, "database.maxConnections": str(expected + 10)}
    assert helm(*template_args(set_values=fits), check=False).returncode == 0
    over = {**values, "database.maxConnections": str(expected + 9)}
    assert helm(*template_args(set_values=over), check=False).returncode != 0
