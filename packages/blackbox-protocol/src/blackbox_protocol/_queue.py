"""The driver's queue of unread events: bounded, dropping the oldest, never the ending.

A server can send frames faster than an app reads its events (or the app may
not read them at all); the queue must not grow with them. Past ``limit``
unread events the oldest is dropped and counted, and the next read gives an
``EventsDropped`` with the count in place of the dropped ones. The events that
end the call are kept whatever the count: the app must learn how it ended.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import anyio

from blackbox_protocol.events import (
    ClientEvent,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    EventsDropped,
)

__all__ = ["EventQueue"]

#: The events that end a call: never dropped, and at most a few of them.
_ENDINGS: Final = (ConversationEnded, ConversationFailed, ConnectionClosed)


class EventQueue:
    """Events waiting for the app, at most ``limit`` of them besides the endings.

    Args:
        limit: how many unread events are kept (1 or more).
    """

    def __init__(self, limit: int) -> None:
        self._events: deque[ClientEvent] = deque()
        self._limit = limit
        self._endings = 0
        self._dropped = 0
        self._closed = False
        self._ready = anyio.Event()

    def put(self, event: ClientEvent) -> None:
        """Queue ``event``, dropping the oldest other event when over the limit."""
        if self._closed:
            return
        self._events.append(event)
        if isinstance(event, _ENDINGS):
            self._endings += 1
        elif len(self._events) - self._endings > self._limit:
            self._drop_oldest()
        self._ready.set()

    async def get(self) -> ClientEvent | None:
        """The next event (``EventsDropped`` first, when some were), or ``None`` once closed."""
        while not (self._dropped or self._events or self._closed):
            if self._ready.is_set():
                self._ready = anyio.Event()
            await self._ready.wait()
        if self._dropped:
            count, self._dropped = self._dropped, 0
            return EventsDropped(count)
        if not self._events:
            return None
        event = self._events.popleft()
        if isinstance(event, _ENDINGS):
            self._endings -= 1
        return event

    def close(self) -> None:
        """No more events: what is queued is still read, then ``get`` returns ``None``."""
        self._closed = True
        self._ready.set()

    def discard(self) -> None:
        """Close, and forget what is queued: ``get`` returns ``None`` at once."""
        self._events.clear()
        self._endings = self._dropped = 0
        self.close()

    def _drop_oldest(self) -> None:
        # Endings are last as a rule; a few late frames after the result can
        # queue behind one, which is then set aside and put back.
        endings: list[ClientEvent] = []
        while isinstance(self._events[0], _ENDINGS):
            endings.append(self._events.popleft())
        self._events.popleft()
        self._events.extendleft(reversed(endings))
        self._dropped += 1
