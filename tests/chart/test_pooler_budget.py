"""database.pooler (PgBouncer in session mode): the chart sets DATABASE_POOLER where the services
connect through it, keeps the migrations Job direct, and counts PgBouncer's server connections in
the budget instead of the pods' pools (templates/_budget.tpl)."""

from __future__ import annotations

import math

import pytest

from services.worker.pools import PINNED_SESSIONS_PER_WORKER
from tests.chart.helm import container, env_of, helm, name, pod_specs, render, template_args

POOLED = {
    "postgres.enabled": "false",
    "database.url": "postgresql://app@pgbouncer:6432/qw",
    "database.pooler": "pgbouncer-session",
    "database.poolerServerConnections": "80",
    "migrations.existingSecret": "qw-direct-url",
}
MIGRATIONS = 3  # our migrate's connection + DBOS.migrate's pool of 2, as without the pooler


def pool_minimum(*, max_replicas: int = 10, drain: int = 4, api: int = 2) -> int:
    """Independently of the template: the LISTEN sessions worker and drain pods pin, plus one
    connection per pod (and the drainer) beyond them."""
    worker_pods = max_replicas + math.ceil(max_replicas * 0.25) + drain
    api_pods = api + math.ceil(api * 0.25)
    return PINNED_SESSIONS_PER_WORKER * worker_pods + worker_pods + api_pods + 1


def test_services_get_database_pooler_and_the_migrations_job_does_not() -> None:
    rendered = render(set_values=POOLED)
    seen = {}
    for owner, spec in pod_specs(rendered):
        for c in spec["containers"]:
            seen[owner["metadata"]["name"]] = env_of(c).get("DATABASE_POOLER", {}).get("value")
    for component in ("api", "worker", "drainer"):
        assert seen[name(component)] == "pgbouncer-session", component
    assert seen[name("migrate")] is None
    job = rendered.get("Job", name("migrate"))
    url = env_of(container(job["spec"]["template"]["spec"], "migrate"))["DBOS_SYSTEM_DATABASE_URL"]
    assert url["valueFrom"]["secretKeyRef"]["name"] == "qw-direct-url"


def test_no_pooler_no_env() -> None:
    for _owner, spec in pod_specs(render()):
        for c in spec["containers"]:
            assert "DATABASE_POOLER" not in env_of(c)


def test_budget_counts_the_poolers_server_connections_exactly() -> None:
    pool = 80
    fits = {**POOLED, "database.maxConnections": str(pool + MIGRATIONS + 10)}
    assert helm(*template_args(set_values=fits), check=False).returncode == 0
    over = {**fits, "database.maxConnections": str(pool + MIGRATIONS + 9)}
    proc = helm(*template_args(set_values=over), check=False)
    assert proc.returncode != 0
    assert f"at worst this release holds {pool + MIGRATIONS} connections" in proc.stderr
    assert "database.poolerServerConnections 80" in proc.stderr


def test_the_same_release_direct_is_refused_on_a_stock_server() -> None:
    """What the pooler buys: the defaults fit max_connections 100 only behind PgBouncer."""
    direct = {k: v for k, v in POOLED.items() if not k.startswith("database.pooler")}
    assert helm(*template_args(set_values=direct), check=False).returncode != 0
    assert helm(*template_args(set_values=POOLED), check=False).returncode == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "worker.autoscaling.maxReplicas": "4",
            "api.replicas": "5",
            "worker.drain.maxReplicas": "1",
        },
    ],
)
def test_a_pool_without_room_beyond_the_listen_sessions_is_refused(
    overrides: dict[str, str],
) -> None:
    minimum = pool_minimum(
        max_replicas=int(overrides.get("worker.autoscaling.maxReplicas", 10)),
        drain=int(overrides.get("worker.drain.maxReplicas", 4)),
        api=int(overrides.get("api.replicas", 2)),
    )
    values = {**POOLED, **overrides, "database.maxConnections": "0"}
    ok = {**values, "database.poolerServerConnections": str(minimum)}
    assert helm(*template_args(set_values=ok), check=False).returncode == 0
    small = {**values, "database.poolerServerConnections": str(minimum - 1)}
    proc = helm(*template_args(set_values=small), check=False)
    assert proc.returncode != 0
    assert f"at least {minimum}" in proc.stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"migrations.existingSecret": ""}, "migrations must reach Postgres directly"),
        ({"migrations.enabled": "false"}, "migrations must reach Postgres directly"),
        (
            {"postgres.enabled": "true", "database.url": ""},
            "the throwaway postgres.enabled server has none",
        ),
        ({"database.pooler": "pgbouncer-transaction"}, "/database/pooler"),
    ],
)
def test_unsafe_pooler_setups_are_refused(overrides: dict[str, str], expected: str) -> None:
    proc = helm(*template_args(set_values={**POOLED, **overrides}), check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr
