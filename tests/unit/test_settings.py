"""Settings parsing: defaults, valid overrides, and a one-line error for every kind of bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings


def test_defaults_run_on_sqlite() -> None:
    s = load_settings({})
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.is_sqlite
    assert s.worker_concurrency == 10
    assert s.worker_polling_interval_seconds == 1.0
    assert s.worker_shutdown_grace_seconds == 30.0
    assert s.executor_id == "local"
    # No pin: the worker runs DBOS's hash of its workflows' source (services/worker/version.py).
    assert s.pinned_app_version is None
    assert load_settings({"DBOS__APPVERSION": ""}).pinned_app_version is None
    assert s.run_migrations is True
    assert s.log_format == "json"


def test_overrides_are_parsed_and_typed() -> None:
    s = load_settings(
        {
            "DBOS_SYSTEM_DATABASE_URL": "postgresql://app:secret@db:5432/dbos",
            "WORKER_CONCURRENCY": "3",
            "WORKER_POLLING_INTERVAL_SECONDS": "0.25",
            "WORKER_SHUTDOWN_GRACE_SECONDS": "0",
            "DBOS__VMID": "queue-worker-worker-5d9c7-abcde",
            "DBOS__APPVERSION": "1.2.3",
            "RUN_MIGRATIONS": "false",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "text",
        }
    )
    assert not s.is_sqlite
    assert (
        s.worker_concurrency,
        s.worker_polling_interval_seconds,
        s.worker_shutdown_grace_seconds,
    ) == (3, 0.25, 0.0)
    assert (s.executor_id, s.pinned_app_version) == ("queue-worker-worker-5d9c7-abcde", "1.2.3")
    assert s.run_migrations is False
    assert (s.log_level, s.log_format) == ("debug", "text")
    assert "secret" not in s.redacted_database_url


def test_api_tokens_from_env_and_file(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("from-file-token-0001\n\n")
    s = load_settings({"API_TOKENS": "env-token-00000001, ", "API_TOKENS_FILE": str(token_file)})
    assert s.api_tokens == ("env-token-00000001", "from-file-token-0001")
    assert load_settings({}).api_tokens == ()


def test_wake_on_notify_defaults_to_the_backend() -> None:
    pg = "postgresql://app@db/dbos"
    assert load_settings({"DBOS_SYSTEM_DATABASE_URL": pg}).worker_wake_on_notify is True
    assert load_settings({}).worker_wake_on_notify is False  # SQLite keeps plain polling
    off = {"DBOS_SYSTEM_DATABASE_URL": pg, "WORKER_WAKE_ON_NOTIFY": "false"}
    assert load_settings(off).worker_wake_on_notify is False
    assert load_settings({"WORKER_WAKE_ON_NOTIFY": "false"}).worker_wake_on_notify is False


def test_database_pooler_is_off_unless_asked_for() -> None:
    pg = "postgresql://u@pgbouncer:6432/qw"
    assert load_settings({"DBOS_SYSTEM_DATABASE_URL": pg}).database_pooler == ""
    pooled = {"DBOS_SYSTEM_DATABASE_URL": pg, "DATABASE_POOLER": " PgBouncer-Session "}
    assert load_settings(pooled).database_pooler == "pgbouncer-session"


def test_empty_values_mean_default() -> None:
    assert load_settings({"WORKER_CONCURRENCY": ""}).worker_concurrency == 10


def test_fairness_limits_are_off_unless_set() -> None:
    off = load_settings({"WORKER_PARTITION_CONCURRENCY": "", "WORKER_RATE_LIMIT": ""})
    assert (
        off.worker_partition_concurrency,
        off.worker_rate_limit,
        off.worker_rate_period_seconds,
    ) == (None, None, 1.0)
    on = load_settings(
        {
            "WORKER_PARTITION_CONCURRENCY": "3",
            "WORKER_RATE_LIMIT": "100",
            "WORKER_RATE_PERIOD_SECONDS": "60",
        }
    )
    assert (
        on.worker_partition_concurrency,
        on.worker_rate_limit,
        on.worker_rate_period_seconds,
    ) == (3, 100, 60.0)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WORKER_CONCURRENCY": "ten"}, "WORKER_CONCURRENCY='ten' is not an integer"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY=0 is out of range"),
        ({"WORKER_CONCURRENCY": "-4"}, "out of range"),
        ({"WORKER_POLLING_INTERVAL_SECONDS": "nan"}, "out of range"),
        ({"WORKER_POLLING_INTERVAL_SECONDS": "fast"}, "is not a number"),
        ({"WORKER_SHUTDOWN_GRACE_SECONDS": "-1"}, "out of range"),
        ({"RUN_MIGRATIONS": "maybe"}, "is not a boolean"),
        ({"WORKER_WAKE_ON_NOTIFY": "true"}, "WORKER_WAKE_ON_NOTIFY=true needs Postgres"),
        (
            {"WORKER_WAKE_ON_NOTIFY": "sometimes", "DBOS_SYSTEM_DATABASE_URL": "postgresql://h/d"},
            "is not a boolean",
        ),
        ({"LOG_FORMAT": "xml"}, "is not one of json, text"),
        ({"DBOS__VMID": "bad id with spaces"}, "DBOS__VMID"),
        ({"DBOS__APPVERSION": "x" * 200}, "DBOS__APPVERSION"),
        ({"DBOS_SYSTEM_DATABASE_URL": "mysql://u@h/db"}, "must start with postgresql://"),
        ({"DBOS_SYSTEM_DATABASE_URL": "not a url"}, "is not a database URL"),
        ({"DBOS_SYSTEM_DATABASE_URL": "sqlite://"}, "must name a SQLite file"),
        ({"MAX_NUM_STEPS": "0"}, "MAX_NUM_STEPS=0 is out of range"),
        ({"API_TOKENS": "short"}, "API tokens must be at least 16"),
        (
            {"API_TOKENS_FILE": "/nonexistent/tokens"},
            "API_TOKENS_FILE='/nonexistent/tokens' cannot",
        ),
        (
            {
                "DATABASE_POOLER": "pgbouncer-transaction",
                "DBOS_SYSTEM_DATABASE_URL": "postgresql://h/d",
            },
            "DATABASE_POOLER='pgbouncer-transaction' is not supported: DBOS LISTENs",
        ),
        ({"DATABASE_POOLER": "pgpool"}, "DATABASE_POOLER='pgpool' is not one of pgbouncer-session"),
        (
            {"DATABASE_POOLER": "pgbouncer-session"},
            "needs a postgresql:// DBOS_SYSTEM_DATABASE_URL",
        ),
        ({"WORKER_ROLE": "boss"}, "WORKER_ROLE='boss' is not one of main, drain"),
        ({"WORKER_IMAGE": "repo/worker:1 .0"}, "WORKER_IMAGE='repo/worker:1 .0' is not an image"),
        ({"WORKER_DEPLOYMENT": "Worker_1"}, "WORKER_DEPLOYMENT='Worker_1' is not a Kubernetes"),
        ({"POD_NAMESPACE": "-ns"}, "POD_NAMESPACE='-ns' is not a Kubernetes name"),
        ({"KUBERNETES_API_URL": "ftp://k8s"}, "KUBERNETES_API_URL='ftp://k8s' is not an http"),
        ({"DRAIN_MAX_REPLICAS": "0"}, "DRAIN_MAX_REPLICAS=0 is out of range"),
        ({"WORKER_PARTITION_CONCURRENCY": "0"}, "WORKER_PARTITION_CONCURRENCY=0 is out of range"),
        ({"WORKER_RATE_LIMIT": "many"}, "WORKER_RATE_LIMIT='many' is not an integer"),
        ({"WORKER_RATE_PERIOD_SECONDS": "0"}, "WORKER_RATE_PERIOD_SECONDS=0.0 is out of range"),
        ({"DRAIN_INTERVAL_SECONDS": "soon"}, "DRAIN_INTERVAL_SECONDS='soon' is not a number"),
        (
            {"WORKER_HEARTBEAT_SECONDS": "10", "WORKER_DEAD_AFTER_SECONDS": "15"},
            "must be at least twice WORKER_HEARTBEAT_SECONDS",
        ),
    ],
)
def test_bad_values_fail_with_one_clear_line(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_drainer_and_release_worker_settings() -> None:
    s = load_settings({})
    assert (s.worker_role, s.worker_image, s.worker_deployment) == ("main", None, None)
    assert (s.drain_interval_seconds, s.drain_max_replicas) == (15.0, 4)
    d = load_settings(
        {
            "WORKER_ROLE": "drain",
            "WORKER_IMAGE": "registry.example.com/qw/worker@sha256:" + "a" * 64,
            "WORKER_DEPLOYMENT": "qw-queue-worker-worker",
            "POD_NAMESPACE": "queue",
            "KUBERNETES_API_URL": "https://10.0.0.1:443/",
        }
    )
    assert d.worker_role == "drain"
    assert d.worker_image is not None
    assert d.worker_image.endswith("a" * 64)
    assert (d.worker_deployment, d.pod_namespace) == ("qw-queue-worker-worker", "queue")
    assert d.kubernetes_api_url == "https://10.0.0.1:443"


# Fields named otherwise than their variable: DBOS's own configuration names, which say nothing
# of what they are to us. Every other field is its environment variable in lower case.
DBOS_NAMED = {
    "database_url": "DBOS_SYSTEM_DATABASE_URL",
    "pinned_app_version": "DBOS__APPVERSION",
    "executor_id": "DBOS__VMID",
}


def _variables_read_for_each_field() -> dict[str, set[str]]:
    """field -> the environment variable names its expression in load_settings mentions
    (looking into the helper functions it calls, e.g. _wake_on_notify, and the locals it uses)."""
    import ast
    import inspect

    import services.common.settings as module

    tree = ast.parse(inspect.getsource(module))
    helpers = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}

    def names_in(node: ast.AST) -> set[str]:
        found = set()
        for sub in ast.walk(node):
            text = sub.value if isinstance(sub, ast.Constant) else None
            if isinstance(text, str) and text.isupper() and text.replace("_", "").isalnum():
                found.add(text)
            called = (
                sub.func.id if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) else ""
            )
            if called in helpers and called != "load_settings":
                found |= names_in(helpers[called])
            if isinstance(sub, ast.Name) and sub.id in assigned:  # a local computed first
                found |= names_in(assigned[sub.id])
        return found

    assigned: dict[str, ast.AST] = {
        n.targets[0].id: n.value
        for n in ast.walk(helpers["load_settings"])
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }

    (call,) = [
        n
        for n in ast.walk(helpers["load_settings"])
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Settings"
    ]
    return {kw.arg: names_in(kw.value) for kw in call.keywords if kw.arg}


def test_every_field_is_named_after_its_environment_variable() -> None:
    read = _variables_read_for_each_field()
    assert set(read) >= set(DBOS_NAMED), read
    for field, variables in read.items():
        expected = DBOS_NAMED.get(field, field.upper())
        assert expected in variables, f"Settings.{field} is read from {sorted(variables)}"


def test_the_deletion_cost_needs_the_pod_name() -> None:
    with pytest.raises(SettingsError, match="WORKER_POD_DELETION_COST=true needs POD_NAME"):
        load_settings({"WORKER_POD_DELETION_COST": "true"})
    settings = load_settings({"WORKER_POD_DELETION_COST": "true", "POD_NAME": "qw-worker-abc"})
    assert settings.worker_pod_deletion_cost
    assert settings.pod_name == "qw-worker-abc"
    assert load_settings({}).worker_db_pool_size == 0  # 0: services/worker/pools.py decides


def test_retention_settings() -> None:
    default = load_settings({})
    assert default.retention_max_age_seconds == 30 * 24 * 3600
    assert (default.retention_batch_size, default.retention_interval_seconds) == (1000, 60)
    off = load_settings({"RETENTION_MAX_AGE_SECONDS": "0", "RETENTION_BATCH_SIZE": "10"})
    assert (off.retention_max_age_seconds, off.retention_batch_size) == (0, 10)
    for env, expected in [
        ({"RETENTION_MAX_AGE_SECONDS": "-1"}, "RETENTION_MAX_AGE_SECONDS"),
        ({"RETENTION_BATCH_SIZE": "0"}, "RETENTION_BATCH_SIZE"),
        ({"RETENTION_INTERVAL_SECONDS": "soon"}, "RETENTION_INTERVAL_SECONDS"),
    ]:
        with pytest.raises(SettingsError, match=expected):
            load_settings(env)
