"""Bounded load on loopback: the real API enqueues at a steady open-loop rate while two real
workers drain, on Postgres. Zero errors, and every accepted workflow ends SUCCESS exactly once.

Latency is reported, not asserted: on a shared 2-core machine an absolute bound would only measure
the neighbours. `python -m tests.load.run_load` prints the same figures for other rates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.load.loadgen import LoadPlan, enqueue_at_rate, report, start_stack, wait_for_drain

PLAN = LoadPlan(rate=60, duration=20, num_steps=2, step_seconds=0.02)


@pytest.mark.timeout(240)
def test_steady_enqueue_load_drains_exactly_once(pg_url: str, tmp_path: Path) -> None:
    stack = start_stack(pg_url, tmp_path, workers=2)
    try:
        sent = enqueue_at_rate(stack.base_url, PLAN)
        drain = wait_for_drain(stack, sent, PLAN)
    finally:
        stack.stop()
    figures = report(PLAN, sent, drain)
    print(f"\n{figures}")  # shown with -s, and in the failure report

    assert sent.error_count == 0, figures
    assert sent.accepted == PLAN.requests, figures
    assert drain.drained, figures
    assert drain.by_status == {"SUCCESS": PLAN.requests}, figures
    assert drain.not_once == [], figures
    # Each worker's own count agrees: N executions started, N succeeded, none twice.
    assert sum(drain.started_counts.values()) == PLAN.requests, figures
    assert sum(drain.completed_counts.values()) == PLAN.requests, figures
    # Both workers took a share of the work.
    assert len(drain.by_executor) == 2, figures
    assert all(n > 0 for n in drain.started_counts.values()), figures
