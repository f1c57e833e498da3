"""The driver's queue of unread events: bounded, the oldest dropped and counted, endings kept.

The hostile-server tests drive it through ``connect()`` with a flood; these
pin the orders a live server cannot produce on demand (late frames queued
behind the result, readers waiting before anything came), on asyncio and trio.
"""

from __future__ import annotations

import anyio
import pytest
from blackbox_protocol import (
    ConnectionClosed,
    ConversationEnded,
    ConversationResultData,
    Event,
    EventsDropped,
    TextReceived,
)
from blackbox_protocol._queue import EventQueue

pytestmark = pytest.mark.anyio

ENDED = ConversationEnded(ConversationResultData(status="Completed"))
CLOSED = ConnectionClosed(1000, "")


def text(number: int) -> TextReceived:
    return TextReceived("assistant", str(number), partial=False)


async def drain(queue: EventQueue) -> list[Event]:
    events: list[Event] = []
    while (event := await queue.get()) is not None:
        events.append(event)
    return events


async def test_under_the_limit_nothing_is_dropped() -> None:
    queue = EventQueue(3)
    for number in range(3):
        queue.put(text(number))
    queue.close()

    assert await drain(queue) == [text(0), text(1), text(2)]


async def test_over_the_limit_the_oldest_go_and_are_counted_first() -> None:
    queue = EventQueue(2)
    for number in range(5):
        queue.put(text(number))
    queue.put(ENDED)
    queue.put(CLOSED)
    queue.close()

    assert await drain(queue) == [EventsDropped(3), text(3), text(4), ENDED, CLOSED]


async def test_late_events_behind_the_result_never_push_it_out() -> None:
    queue = EventQueue(1)
    queue.put(text(0))
    queue.put(ENDED)
    for number in range(1, 4):
        queue.put(text(number))  # late frames, after the result
    queue.put(CLOSED)
    queue.close()

    assert await drain(queue) == [EventsDropped(3), ENDED, text(3), CLOSED]


async def test_a_count_is_given_once_and_restarts() -> None:
    queue = EventQueue(1)
    queue.put(text(0))
    queue.put(text(1))
    assert await queue.get() == EventsDropped(1)
    assert await queue.get() == text(1)
    queue.put(text(2))
    queue.put(text(3))
    queue.close()

    assert await drain(queue) == [EventsDropped(1), text(3)]


async def test_readers_waiting_are_woken_by_each_event_and_by_the_close() -> None:
    queue = EventQueue(10)
    got: list[Event | None] = []

    async def read() -> None:
        got.append(await queue.get())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(read)
            group.start_soon(read)
            await anyio.wait_all_tasks_blocked()
            queue.put(text(0))
            await anyio.wait_all_tasks_blocked()
            assert got == [text(0)]
            queue.close()

    assert got == [text(0), None]


async def test_discard_forgets_what_is_queued_and_refuses_more() -> None:
    queue = EventQueue(1)
    queue.put(text(0))
    queue.put(text(1))
    queue.put(ENDED)
    queue.discard()
    queue.put(text(2))

    assert await queue.get() is None
