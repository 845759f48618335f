"""The parts of the live streams that need no server: the client's SSE parser (as browsers
parse the format) and a list topic's Last-Event-ID arithmetic."""

from __future__ import annotations

import io
import json

from services.api.streams.sse import frame
from services.api.streams.topics import Event, ListTopic
from services.client.sse import read_events


def _parse(raw: bytes) -> list[tuple[str, str, str | None]]:
    return [(e.name, e.data, e.id) for e in read_events(io.BytesIO(raw).readline)]


def test_parser_reads_the_format_as_browsers_do() -> None:
    raw = (
        b": stream open\r\nretry: 2000\r\n\r\n"
        b'id: a1\r\ndata: {"x": 1}\r\n\r\n'
        b": keepalive\n\n"
        b"event: list\ndata:first\ndata: second\n\n"  # no space after the colon is allowed
        b"id\ndata: 3\n\n"  # a bare "id" resets the id to empty
        b"data: cut off without a blank line"
    )
    assert _parse(raw) == [
        ("message", '{"x": 1}', "a1"),
        ("list", "first\nsecond", "a1"),  # the id stays in force until the next one
        ("message", "3", ""),
    ]


def test_server_frames_round_trip_through_the_parser() -> None:
    data = {"text": "two\nlines", "n": 1}
    raw = frame(Event(data, "7", "list")) + frame(Event([1, 2], None, "queues"))
    assert _parse(raw) == [
        ("list", json.dumps(data, separators=(",", ":")), "7"),
        ("queues", "[1,2]", "7"),
    ]


def _topic_with(seqs: int) -> ListTopic:
    topic = ListTopic(boot="b00t")
    for n in range(seqs):
        topic.update([{"workflow_id": "w", "steps_completed": n}], None)
    return topic


def test_list_resume_gives_the_deltas_since_or_none_for_a_snapshot() -> None:
    topic = _topic_with(5)  # events b00t-1 .. b00t-5
    assert [e.id for e in topic.since("b00t-2") or []] == ["b00t-3", "b00t-4", "b00t-5"]
    assert topic.since("b00t-5") == []  # up to date: nothing to send
    for unknown in ("other-3", "b00t-9", "b00t-x", "b00t", ""):
        assert topic.since(unknown) is None, unknown
    topic.update([{"workflow_id": "w", "steps_completed": 4}], None)  # no change: no event
    assert topic.seq == 5


def test_list_resume_past_the_history_is_a_snapshot() -> None:
    topic = _topic_with(300)  # more than the 256 deltas kept
    assert topic.since("b00t-10") is None
    assert [e.id for e in topic.since("b00t-299") or []] == ["b00t-300"]
    snapshot = topic.snapshot().data
    assert isinstance(snapshot, dict)
    assert snapshot["snapshot"] is True
