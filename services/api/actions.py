"""Retry, fork and bulk cancel through DBOSClient: what the operations routes do to workflows.

Retry depends on why the workflow stopped. DBOS cannot resume an ERROR workflow (its outcome is
recorded), so an ERROR workflow is forked from its first step under a deterministic id
(X-retry-1, X-retry-2, ...: services/common/failures_sql.py); a CANCELLED or
MAX_RECOVERY_ATTEMPTS_EXCEEDED one is resumed in place. Both are safe to repeat: a repeated retry
of X finds X's unfinished or successful retry and returns it instead of forking again, and a
resumed workflow is no longer CANCELLED, so it is not resumed twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from dbos import DBOSClient, SetWorkflowID

from services.common.failures_sql import (
    DEAD_STATUSES,
    RETRYABLE_STATUSES,
    FailureQueries,
    KnownWorkflow,
    retry_ids,
    retry_root,
)
from services.common.names import WORKFLOW_QUEUE

# A retry that ended like this is over: retrying again makes the next one.
_FINISHED_BADLY = {*RETRYABLE_STATUSES}


@dataclass(frozen=True)
class RetryOutcome:
    workflow_id: str  # the workflow asked for
    retry_workflow_id: str | None  # the run that retries it (None: skipped)
    outcome: str  # "forked", "resumed", "already_retried", or "skipped"
    reason: str | None = None


class NotRetryable(Exception):
    pass


def plan_retry(queries: FailureQueries, wf: KnownWorkflow) -> RetryOutcome:
    """What a retry of `wf` would do, without doing it."""
    if wf.status in ("CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
        return RetryOutcome(wf.workflow_id, wf.workflow_id, "resumed")
    if wf.status not in DEAD_STATUSES:
        return RetryOutcome(
            wf.workflow_id,
            None,
            "skipped",
            f"workflow is {wf.status}; only {', '.join(sorted(RETRYABLE_STATUSES))} can be retried",
        )
    root = retry_root(wf.workflow_id, wf.forked_from)
    candidates = retry_ids(root)
    existing = queries.by_ids(candidates)
    taken = [i for i, c in enumerate(candidates) if c in existing]
    if taken:
        latest = existing[candidates[taken[-1]]]
        # The latest retry in the chain is a later run than `wf` unless it is `wf` itself.
        if latest.workflow_id != wf.workflow_id and latest.status not in _FINISHED_BADLY:
            return RetryOutcome(wf.workflow_id, latest.workflow_id, "already_retried")
    n = (taken[-1] + 1) if taken else 0
    if n >= len(candidates):
        return RetryOutcome(
            wf.workflow_id,
            None,
            "skipped",
            f"retried {len(candidates)} times already; fork it instead",
        )
    return RetryOutcome(wf.workflow_id, candidates[n], "forked")


def do_retry(client: DBOSClient, queries: FailureQueries, wf: KnownWorkflow) -> RetryOutcome:
    plan = plan_retry(queries, wf)
    queue = wf.queue or WORKFLOW_QUEUE
    if plan.outcome == "resumed":
        client.resume_workflow(wf.workflow_id, queue_name=queue)
    elif plan.outcome == "forked":
        assert plan.retry_workflow_id is not None
        if not _fork_as(client, queries, wf.workflow_id, plan.retry_workflow_id, 1, queue):
            return RetryOutcome(wf.workflow_id, plan.retry_workflow_id, "already_retried")
    return plan


def _fork_as(
    client: DBOSClient,
    queries: FailureQueries,
    source: str,
    new_id: str,
    start_step: int,
    queue: str,
) -> bool:
    """Fork `source` as `new_id`; False if a concurrent request made `new_id` first."""
    try:
        with SetWorkflowID(new_id):
            client.fork_workflow(source, start_step, queue_name=queue)
    except sa.exc.IntegrityError:
        if new_id in queries.by_ids([new_id]):
            return False
        raise
    return True


def fork(client: DBOSClient, queries: FailureQueries, wf: KnownWorkflow, start_step: int) -> str:
    """A new workflow replaying `wf`'s steps before start_step and running the rest again."""
    new_id = str(uuid.uuid4())
    _fork_as(client, queries, wf.workflow_id, new_id, start_step, wf.queue or WORKFLOW_QUEUE)
    return new_id


def cancel_many(client: DBOSClient, ids: list[str]) -> None:
    if ids:
        client.cancel_workflows(ids)


def outcome_json(o: RetryOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workflow_id": o.workflow_id,
        "retry_workflow_id": o.retry_workflow_id,
        "outcome": o.outcome,
    }
    if o.reason:
        out["reason"] = o.reason
    return out
