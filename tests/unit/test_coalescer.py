"""services/api/coalescer.py: concurrent submits share a write, a lone one is written alone at
once, and a failed write fails exactly the requests it carried."""

from __future__ import annotations

import asyncio
import threading

import pytest

from services.api.coalescer import Coalescer


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.groups: list[list[str]] = []
        self.gate = threading.Event()
        self.fail_on = fail_on

    def write(self, items: list[str]) -> list[str]:
        self.gate.wait(5)  # hold the first write so later submits queue up behind it
        self.groups.append(items)
        if self.fail_on in items:
            raise ConnectionError("database went away")
        return [f"id-{item}" for item in items]


def test_a_lone_request_is_written_alone_and_at_once() -> None:
    rec = Recorder()
    rec.gate.set()
    coalescer = Coalescer(rec.write, writers=2, max_group=10)
    assert asyncio.run(coalescer.submit("a")) == "id-a"
    assert rec.groups == [["a"]]


def test_requests_arriving_during_a_write_share_the_next() -> None:
    rec = Recorder()

    async def scenario() -> list[str]:
        coalescer = Coalescer(rec.write, writers=1, max_group=3)
        first = asyncio.ensure_future(coalescer.submit("a"))
        await asyncio.sleep(0.05)  # "a" is being written; the next five wait for it
        rest = [asyncio.ensure_future(coalescer.submit(x)) for x in "bcdef"]
        await asyncio.sleep(0.05)
        rec.gate.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == [f"id-{x}" for x in "abcdef"]
    assert rec.groups == [["a"], ["b", "c", "d"], ["e", "f"]]


def test_a_failed_write_fails_its_group_only() -> None:
    rec = Recorder(fail_on="c")

    async def scenario() -> list[object]:
        coalescer = Coalescer(rec.write, writers=1, max_group=2)
        first = asyncio.ensure_future(coalescer.submit("a"))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(coalescer.submit(x)) for x in "bcd"]
        await asyncio.sleep(0.05)
        rec.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    a, b, c, d = asyncio.run(scenario())
    assert (a, d) == ("id-a", "id-d")
    assert isinstance(b, ConnectionError)
    assert isinstance(c, ConnectionError)
    assert rec.groups == [["a"], ["b", "c"], ["d"]]


@pytest.mark.parametrize("writers", [1, 3])
def test_many_concurrent_submits_each_get_their_own_id(writers: int) -> None:
    rec = Recorder()
    rec.gate.set()

    async def scenario() -> list[str]:
        coalescer = Coalescer(rec.write, writers=writers, max_group=7)
        return await asyncio.gather(*(coalescer.submit(str(i)) for i in range(100)))

    assert asyncio.run(scenario()) == [f"id-{i}" for i in range(100)]
    assert sorted(x for g in rec.groups for x in g) == sorted(str(i) for i in range(100))
    assert max(len(g) for g in rec.groups) <= 7
