"""`queue-worker dev` beside another one: its worker's metrics port must not collide (issue 14)."""

from __future__ import annotations

import contextlib
import socket

from services.dev import _metrics_port


def test_an_explicit_metrics_port_is_kept() -> None:
    assert _metrics_port(9123) == 9123


def test_a_taken_9000_falls_back_to_a_free_port() -> None:
    with contextlib.ExitStack() as stack:
        holder = stack.enter_context(socket.socket())
        try:  # stand in for the first `queue-worker dev`'s worker
            holder.bind(("127.0.0.1", 9000))
            holder.listen()
        except OSError:
            pass  # something else holds 9000 already: the same situation
        port = _metrics_port(None)
        assert port != 9000
        probe = stack.enter_context(socket.socket())
        probe.bind(("127.0.0.1", port))  # free, as promised
