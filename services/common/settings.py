"""Typed settings, parsed once from the environment at start-up.

Every value has a default that works on a laptop; a bad value fails fast with one line that names
the variable, the value and what was expected (see SettingsError).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.common.pooler import POOLERS, UNSAFE_POOLERS

DEFAULT_DATABASE_URL = "sqlite:///dbos_queue_worker.sqlite"

T = TypeVar("T")


class SettingsError(ValueError):
    """A configuration value is missing or malformed. str(err) is a one-line message for users."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    # Worker side.
    worker_concurrency: int
    # WORKER_DB_POOL_SIZE: connections in DBOS's pool (services/worker/pools.py sizes it by
    # default); with our own pool and the wake-up listener, a worker's share of max_connections.
    worker_db_pool_size: int
    worker_polling_interval_seconds: float
    worker_shutdown_grace_seconds: float
    worker_heartbeat_seconds: float
    worker_dead_after_seconds: float
    worker_recovery_sweep_seconds: float
    # Fairness limits every queue is registered with (services/worker/queues.py): at most
    # worker_partition_concurrency workflows of one partition_key run at once, across all workers
    # (None: no per-key limit, the queue is not partitioned); at most worker_rate_limit workflows
    # start per worker_rate_period_seconds on each queue (None: no rate limit).
    worker_partition_concurrency: int | None
    worker_rate_limit: int | None
    worker_rate_period_seconds: float
    # DBOS__APPVERSION: an explicit workflow version, or None to let DBOS derive it from the
    # workflows' source (services/worker/version.py says which one a worker runs).
    pinned_app_version: str | None
    executor_id: str
    run_migrations: bool
    # "main": the release's workers (promote their version to latest, record their image);
    # "drain": started by the drainer to finish an old version's work (services/drain/).
    worker_role: str
    # The image this worker runs (the chart sets it): recorded per version for the drainer.
    worker_image: str | None
    # Drainer side (services/drain/).
    drain_interval_seconds: float
    drain_max_replicas: int
    worker_deployment: str | None
    pod_namespace: str | None
    kubernetes_api_url: str | None
    # WORKER_POD_DELETION_COST: keep this pod's controller.kubernetes.io/pod-deletion-cost equal
    # to its in-flight workflows (services/worker/deletion_cost.py), so a scale-down removes idle
    # workers first. Needs POD_NAME (the downward API) and the chart's RBAC.
    worker_pod_deletion_cost: bool
    worker_pod_deletion_cost_interval_seconds: float
    pod_name: str | None
    # Postgres only: wake the queue thread on a NOTIFY from the enqueue trigger and when one of
    # this worker's workflows finishes, instead of only on the polling timer.
    worker_wake_on_notify: bool
    # How often DBOS's scheduler re-reads the schedules: a new, paused, resumed or deleted
    # schedule takes effect within this long (DBOS's own default is 30 s).
    scheduler_polling_interval_seconds: float
    # DATABASE_POOLER: "" (direct) or "pgbouncer-session" (DBOS_SYSTEM_DATABASE_URL is a PgBouncer
    # in session mode: every engine opens a short client session per checkout; services/common/
    # pooler.py).
    database_pooler: str
    # API side.
    max_num_steps: int
    default_step_seconds: float
    api_db_pool_size: int
    api_tokens: tuple[str, ...]
    metrics_cache_seconds: float
    stream_poll_seconds: float
    stream_heartbeat_seconds: float
    # Both.
    log_level: str
    log_format: str
    # Worker side: finished workflows older than this are deleted (0: never), in batches of
    # retention_batch_size, checked every retention_interval_seconds (services/worker/retention.py).
    retention_max_age_seconds: float = 30 * 24 * 3600.0
    retention_batch_size: int = 1000
    retention_interval_seconds: float = 60.0

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def redacted_database_url(self) -> str:
        """The URL with its password hidden, for logs."""
        return make_url(self.database_url).render_as_string(hide_password=True)


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}={value} is out of range (expected {lo}..{hi})")
    return value


def _float(name: str, raw: str, lo: float, hi: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:  # also rejects nan
        raise SettingsError(f"{name}={value} is out of range (expected {lo}..{hi})")
    return value


def _optional(source: Mapping[str, str], name: str, parse: Callable[[str, str], T]) -> T | None:
    """A parsed value, or None when unset or empty (the limit is off)."""
    raw = source.get(name)
    return parse(name, raw) if raw else None


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (expected true or false)")


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    lowered = raw.strip().lower()
    if lowered not in choices:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return lowered


# Kubernetes pod names and image tags fit this; it keeps odd bytes out of the executor_id column.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$")


def _label(name: str, raw: str) -> str:
    if not _LABEL.match(raw):
        raise SettingsError(
            f"{name}={raw!r} must be 1-128 characters of letters, digits and . _ : + -"
        )
    return raw


def _optional_label(name: str, raw: str | None) -> str | None:
    """A _label, or None when unset or empty."""
    return _label(name, raw) if raw else None


# An image reference (registry/repo:tag or @sha256:...): no whitespace, bounded.
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$")
# A Kubernetes object or namespace name (RFC 1123 label).
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _optional_image(raw: str | None) -> str | None:
    if not raw:
        return None
    if not _IMAGE.match(raw):
        raise SettingsError(f"WORKER_IMAGE={raw!r} is not an image reference")
    return raw


def _optional_dns_name(name: str, raw: str | None) -> str | None:
    if not raw:
        return None
    if not _DNS_NAME.match(raw):
        raise SettingsError(f"{name}={raw!r} is not a Kubernetes name (lowercase RFC 1123 label)")
    return raw


def _optional_http_url(name: str, raw: str | None) -> str | None:
    if not raw:
        return None
    if not re.match(r"^https?://[^\s/]+(/\S*)?$", raw):
        raise SettingsError(f"{name}={raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def _database_url(raw: str) -> str:
    name = "DBOS_SYSTEM_DATABASE_URL"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise SettingsError(f"{name} is not a database URL (got {raw!r})") from None
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise SettingsError(
            f"{name} must start with postgresql:// or sqlite:/// (got {url.drivername}://...)"
        )
    if url.get_backend_name() == "sqlite" and not url.database:
        raise SettingsError(f"{name} must name a SQLite file, e.g. {DEFAULT_DATABASE_URL}")
    return raw


MIN_TOKEN_LENGTH = 16


def _api_tokens(source: Mapping[str, str]) -> tuple[str, ...]:
    """Tokens from API_TOKENS (comma-separated) and/or API_TOKENS_FILE (one per line)."""
    raw = [t for t in (source.get("API_TOKENS") or "").split(",")]
    path = source.get("API_TOKENS_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                raw.extend(f.read().splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"API_TOKENS_FILE={path!r} cannot be read: {exc}") from None
    tokens = tuple(t.strip() for t in raw if t.strip())
    for t in tokens:
        if len(t) < MIN_TOKEN_LENGTH or not t.isascii() or not t.isprintable() or " " in t:
            # Never echo the token itself.
            raise SettingsError(
                f"API tokens must be at least {MIN_TOKEN_LENGTH} printable ASCII characters "
                "without spaces (one is not)"
            )
    return tokens


def _wake_on_notify(source: Mapping[str, str], database_url: str) -> bool:
    """On by default on Postgres; SQLite has no LISTEN/NOTIFY, so it keeps the polling timer."""
    name = "WORKER_WAKE_ON_NOTIFY"
    is_sqlite = make_url(database_url).get_backend_name() == "sqlite"
    raw = source.get(name)
    if raw is None or raw == "":
        return not is_sqlite
    value = _bool(name, raw)
    if value and is_sqlite:
        raise SettingsError(f"{name}=true needs Postgres (SQLite has no LISTEN/NOTIFY)")
    return value


def _database_pooler(source: Mapping[str, str], database_url: str) -> str:
    name = "DATABASE_POOLER"
    raw = (source.get(name) or "").strip().lower()
    if raw in UNSAFE_POOLERS:
        raise SettingsError(f"{name}={raw!r} is not supported: {UNSAFE_POOLERS[raw]}")
    if raw not in POOLERS:
        raise SettingsError(f"{name}={raw!r} is not one of {', '.join(p for p in POOLERS if p)}")
    if raw and make_url(database_url).get_backend_name() != "postgresql":
        raise SettingsError(f"{name}={raw} needs a postgresql:// DBOS_SYSTEM_DATABASE_URL")
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Parse settings from `env` (default: os.environ). Raises SettingsError on a bad value."""
    source = os.environ if env is None else env

    def get(name: str, default: str, parse: Callable[[str, str], T]) -> T:
        raw = source.get(name)
        if raw is None or raw == "":
            raw = default
        return parse(name, raw)

    database_url = _database_url(source.get("DBOS_SYSTEM_DATABASE_URL") or DEFAULT_DATABASE_URL)
    settings = Settings(
        database_url=database_url,
        worker_concurrency=get("WORKER_CONCURRENCY", "10", lambda n, r: _int(n, r, 1, 10_000)),
        worker_db_pool_size=get("WORKER_DB_POOL_SIZE", "0", lambda n, r: _int(n, r, 0, 1_000)),
        worker_polling_interval_seconds=get(
            "WORKER_POLLING_INTERVAL_SECONDS", "1.0", lambda n, r: _float(n, r, 0.01, 60.0)
        ),
        worker_partition_concurrency=_optional(
            source, "WORKER_PARTITION_CONCURRENCY", lambda n, r: _int(n, r, 1, 10_000)
        ),
        worker_rate_limit=_optional(
            source, "WORKER_RATE_LIMIT", lambda n, r: _int(n, r, 1, 1_000_000)
        ),
        worker_rate_period_seconds=get(
            "WORKER_RATE_PERIOD_SECONDS", "1.0", lambda n, r: _float(n, r, 0.001, 86400.0)
        ),
        worker_shutdown_grace_seconds=get(
            "WORKER_SHUTDOWN_GRACE_SECONDS", "30", lambda n, r: _float(n, r, 0.0, 3600.0)
        ),
        worker_heartbeat_seconds=get(
            "WORKER_HEARTBEAT_SECONDS", "5", lambda n, r: _float(n, r, 0.05, 600.0)
        ),
        worker_dead_after_seconds=get(
            "WORKER_DEAD_AFTER_SECONDS", "30", lambda n, r: _float(n, r, 0.1, 86400.0)
        ),
        worker_recovery_sweep_seconds=get(
            "WORKER_RECOVERY_SWEEP_SECONDS", "10", lambda n, r: _float(n, r, 0.0, 86400.0)
        ),
        # DBOS reads the same two names. The version is only set to pin one on purpose (the
        # chart's worker.workflowVersion): never the image tag, which would strand every
        # in-flight workflow at each release (workers only dequeue their own version).
        pinned_app_version=_optional_label("DBOS__APPVERSION", source.get("DBOS__APPVERSION")),
        executor_id=get("DBOS__VMID", "local", _label),
        run_migrations=get("RUN_MIGRATIONS", "true", _bool),
        worker_role=get("WORKER_ROLE", "main", lambda n, r: _choice(n, r, ("main", "drain"))),
        worker_image=_optional_image(source.get("WORKER_IMAGE")),
        drain_interval_seconds=get(
            "DRAIN_INTERVAL_SECONDS", "15", lambda n, r: _float(n, r, 0.1, 3600.0)
        ),
        drain_max_replicas=get("DRAIN_MAX_REPLICAS", "4", lambda n, r: _int(n, r, 1, 1000)),
        worker_deployment=_optional_dns_name("WORKER_DEPLOYMENT", source.get("WORKER_DEPLOYMENT")),
        pod_namespace=_optional_dns_name("POD_NAMESPACE", source.get("POD_NAMESPACE")),
        kubernetes_api_url=_optional_http_url(
            "KUBERNETES_API_URL", source.get("KUBERNETES_API_URL")
        ),
        worker_wake_on_notify=_wake_on_notify(source, database_url),
        worker_pod_deletion_cost=get("WORKER_POD_DELETION_COST", "false", _bool),
        worker_pod_deletion_cost_interval_seconds=get(
            "WORKER_POD_DELETION_COST_INTERVAL_SECONDS", "2", lambda n, r: _float(n, r, 0.2, 3600.0)
        ),
        pod_name=_optional_dns_name("POD_NAME", source.get("POD_NAME")),
        scheduler_polling_interval_seconds=get(
            "SCHEDULER_POLLING_INTERVAL_SECONDS", "10", lambda n, r: _float(n, r, 0.1, 3600.0)
        ),
        database_pooler=_database_pooler(source, database_url),
        max_num_steps=get("MAX_NUM_STEPS", "1000", lambda n, r: _int(n, r, 1, 1_000_000)),
        default_step_seconds=get(
            "DEFAULT_STEP_SECONDS", "1.0", lambda n, r: _float(n, r, 0.0, 3600.0)
        ),
        api_db_pool_size=get("API_DB_POOL_SIZE", "10", lambda n, r: _int(n, r, 1, 200)),
        api_tokens=_api_tokens(source),
        metrics_cache_seconds=get(
            "METRICS_CACHE_SECONDS", "2", lambda n, r: _float(n, r, 0.0, 300.0)
        ),
        stream_poll_seconds=get(
            "STREAM_POLL_SECONDS", "0.5", lambda n, r: _float(n, r, 0.05, 60.0)
        ),
        stream_heartbeat_seconds=get(
            "STREAM_HEARTBEAT_SECONDS", "15", lambda n, r: _float(n, r, 0.1, 300.0)
        ),
        log_level=get(
            "LOG_LEVEL",
            "info",
            lambda n, r: _choice(n, r, ("debug", "info", "warning", "error")),
        ),
        log_format=get("LOG_FORMAT", "json", lambda n, r: _choice(n, r, ("json", "text"))),
        retention_max_age_seconds=get(
            "RETENTION_MAX_AGE_SECONDS",
            "2592000",
            lambda n, r: _float(n, r, 0.0, 100 * 365 * 86400.0),
        ),
        retention_batch_size=get(
            "RETENTION_BATCH_SIZE", "1000", lambda n, r: _int(n, r, 1, 100_000)
        ),
        retention_interval_seconds=get(
            "RETENTION_INTERVAL_SECONDS", "60", lambda n, r: _float(n, r, 0.1, 86400.0)
        ),
    )
    if settings.worker_dead_after_seconds < 2 * settings.worker_heartbeat_seconds:
        # One late heartbeat must not get a live worker's work taken away.
        raise SettingsError(
            f"WORKER_DEAD_AFTER_SECONDS={settings.worker_dead_after_seconds:g} must be at least "
            f"twice WORKER_HEARTBEAT_SECONDS={settings.worker_heartbeat_seconds:g}"
        )
    if settings.worker_pod_deletion_cost and settings.pod_name is None:
        raise SettingsError(
            "WORKER_POD_DELETION_COST=true needs POD_NAME (the chart sets it from the downward API)"
        )
    return settings
