"""Live streams (Server-Sent Events), served from the process's one poller (streams/broker.py).

GET /api/workflows/{id}/events: the workflow's state (GET /api/workflows/{id}'s fields) now and
after each change; ends after a terminal status. Event ids are derived from the state, so a
client reconnecting with Last-Event-ID to any replica gets the current state only if it changed.
GET /api/workflows/events?<GET /api/workflows's parameters>: `list` events (a snapshot, then
deltas of that page) and `queues` events (GET /api/queues's body, when it changes). A reconnect
to the same process resumes after its Last-Event-ID; otherwise it starts with a snapshot.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.api.auth import TOKEN_PARAM
from services.api.errors import ApiError
from services.api.routes.workflows import _get_or_404 as get_or_404
from services.api.serialize import workflow_json
from services.api.streams.broker import Broker
from services.api.streams.sse import event_stream
from services.api.streams.topics import ListKey, Subscription, workflow_event
from services.api.validation import parse_list_query


def _broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


def _last_event_id(request: Request) -> str | None:
    value = request.headers.get("last-event-id", "").strip()
    return value[:200] or None


async def workflow_events(request: Request) -> Response:
    workflow_id = request.path_params["workflow_id"]
    unknown = sorted(set(request.query_params.keys()) - {TOKEN_PARAM})
    if unknown:
        raise ApiError(400, f"unknown query parameter(s): {', '.join(unknown)}")
    row = await get_or_404(request.app.state.queries, workflow_id)
    current = workflow_json(row, detail=True)
    event = workflow_event(current)
    last_id = _last_event_id(request)
    if last_id == event.id and event.last:
        # The client saw the end already: 204 tells EventSource to stop reconnecting.
        return Response(status_code=204)
    broker = _broker(request)

    def subscribe() -> Subscription:
        sub = broker.subscribe_workflow(workflow_id, current)
        sub.last_id = last_id  # nothing is sent again that the client already has
        sub.send(event)
        return sub

    return event_stream(
        subscribe, request.app.state.settings.stream_heartbeat_seconds, broker.unsubscribe
    )


async def list_events(request: Request) -> Response:
    params = QueryParams(
        [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAM]
    )
    q = parse_list_query(params)
    key = ListKey(
        limit=q.limit,
        statuses=tuple(q.statuses) if q.statuses else None,
        names=tuple(q.names) if q.names else None,
        queue_names=tuple(q.queue_names) if q.queue_names else None,
        after=q.after,
    )
    broker = _broker(request)
    last_id = _last_event_id(request)
    return event_stream(
        lambda: broker.subscribe_list(key, last_id),
        request.app.state.settings.stream_heartbeat_seconds,
        broker.unsubscribe,
    )


# Before /api/workflows/{workflow_id} in the route table: "events" is not a workflow id here.
routes = [
    Route("/api/workflows/events", list_events, methods=["GET"]),
    Route("/api/workflows/{workflow_id}/events", workflow_events, methods=["GET"]),
]
