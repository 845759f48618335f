"""`queue-worker watch ID...`: live progress of workflows until each one ends.

Each workflow is followed by one thread on its event stream (GET /api/workflows/{id}/events),
reconnecting with Last-Event-ID when the stream drops; after repeated failures, or if the server
has no streams, that workflow falls back to polling GET /api/workflows/{id}. The threads hand
states to the main thread, which alone draws (rich progress bars on stderr, or one JSON object
per line on stdout with --output json).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.client.http import Api, ApiError, ConnectionFailed, workflow_path

TERMINAL = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
STREAM_ATTEMPTS = 3  # consecutive stream failures before polling instead
GIVE_UP_AFTER_SEC = 60.0  # polling keeps failing this long: report the connection error


@dataclass(frozen=True)
class Update:
    workflow_id: str
    state: dict[str, Any] | None = None
    error: str | None = None  # the workflow cannot be followed any more


class Follower(threading.Thread):
    def __init__(
        self, api: Api, workflow_id: str, out: queue.Queue[Update], stream: bool, poll_sec: float
    ) -> None:
        super().__init__(daemon=True, name=f"watch-{workflow_id[:8]}")
        self.api, self.workflow_id, self.out = api, workflow_id, out
        self.use_stream, self.poll_sec = stream, poll_sec
        self.used_polling = False

    def run(self) -> None:
        try:
            if self.use_stream and self._stream():
                return
            self.used_polling = True
            self._poll()
        except ApiError as exc:
            self.out.put(Update(self.workflow_id, error=f"HTTP {exc.status}: {exc}"))
        except Exception as exc:  # never die silently: the main thread waits for each workflow
            self.out.put(Update(self.workflow_id, error=f"{type(exc).__name__}: {exc}"))

    def _stream(self) -> bool:
        """True when the workflow ended; False to fall back to polling."""
        last_id: str | None = None
        failures = 0
        while failures < STREAM_ATTEMPTS:
            try:
                for event in self.api.stream(workflow_path(self.workflow_id, "events"), last_id):
                    if event.name == "deleted":
                        self.out.put(Update(self.workflow_id, error="the workflow was deleted"))
                        return True
                    state = json.loads(event.data)
                    last_id, failures = event.id, 0
                    self.out.put(Update(self.workflow_id, state))
                    if state.get("workflow_status") in TERMINAL:
                        return True
            except ApiError as exc:
                if exc.status in (401, 403):
                    raise
                if exc.status == 404:  # a server without streams (GET found the workflow)
                    return False
            except (ConnectionFailed, ValueError):
                pass
            # Ended without a terminal state (the server restarted) or broke: reconnect.
            failures += 1
            time.sleep(min(5.0, 0.25 * 2**failures))
        return False

    def _poll(self) -> None:
        failing_since: float | None = None
        previous: dict[str, Any] | None = None
        while True:
            try:
                state = self.api.call("GET", workflow_path(self.workflow_id))
                failing_since = None
            except ConnectionFailed as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > GIVE_UP_AFTER_SEC:
                    self.out.put(Update(self.workflow_id, error=str(exc)))
                    return
                time.sleep(self.poll_sec)
                continue
            if state != previous:
                self.out.put(Update(self.workflow_id, state))
                previous = state
            if state.get("workflow_status") in TERMINAL:
                return
            time.sleep(self.poll_sec)


def _describe(workflow_id: str, state: dict[str, Any]) -> str:
    return f"{workflow_id[:13]:<13} {state.get('workflow_status', '?'):<9}"


def watch(
    api: Api, workflow_ids: list[str], *, json_output: bool, stream: bool, poll_sec: float
) -> int:
    """0 if every workflow ended SUCCESS, 1 if any ended otherwise, 3 if one could not be
    followed. Unknown ids were refused (exit 4) before this is called."""
    updates: queue.Queue[Update] = queue.Queue()
    followers = [Follower(api, wid, updates, stream, poll_sec) for wid in workflow_ids]
    finals: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=json_output,
    )
    tasks = {wid: progress.add_task(wid[:13], total=None) for wid in workflow_ids}
    with progress:
        for follower in followers:
            follower.start()
        while len(finals) + len(errors) < len(workflow_ids):
            update = updates.get()
            wid = update.workflow_id
            if update.error is not None:
                errors[wid] = update.error
                progress.update(tasks[wid], description=f"{wid[:13]:<13} {'LOST':<9}")
                continue
            state = update.state or {}
            if json_output:
                print(json.dumps(state), flush=True)
            total, done = state.get("num_steps"), state.get("steps_completed")
            progress.update(
                tasks[wid],
                description=_describe(wid, state),
                total=total if isinstance(total, int) and total > 0 else None,
                completed=done if isinstance(done, int) else 0,
            )
            if state.get("workflow_status") in TERMINAL:
                finals[wid] = state
    for wid in workflow_ids:
        if wid in errors:
            console.print(f"queue-worker: error: {wid}: {errors[wid]}", highlight=False)
        elif not json_output:
            state = finals[wid]
            steps = f"{state.get('steps_completed')}/{state.get('num_steps')}"
            print(f"{wid}\t{state['workflow_status']}\t{steps}")
    if errors:
        return 3
    return 0 if all(s["workflow_status"] == "SUCCESS" for s in finals.values()) else 1
