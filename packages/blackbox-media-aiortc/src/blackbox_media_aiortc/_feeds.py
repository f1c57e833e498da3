"""The two feeds a session hands out: received frames (bounded) and state changes."""

from __future__ import annotations

import asyncio  # noqa: TID251 -- aiortc is asyncio-only; these feeds live on its loop
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from blackbox_protocol import AudioFrame, MediaState

__all__ = ["FrameQueue", "StateFeed"]

_FINAL = (MediaState.FAILED, MediaState.CLOSED)


class FrameQueue:
    """A bounded queue of frames that drops the oldest when full, counting them.

    A session fills it whether or not anyone reads ``received_audio()``, so it
    must never grow without bound or block the receiver.

    Args:
        maxlen: how many frames it keeps.
    """

    def __init__(self, maxlen: int) -> None:
        self._frames: deque[AudioFrame] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """How many frames were dropped, unread, to make room."""

    def put(self, frame: AudioFrame) -> None:
        """Add a frame (dropping the oldest if full); ignored once closed."""
        if self._closed:
            return
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    def close(self) -> None:
        """No more frames: readers get what is queued, then the end."""
        self._closed = True
        self._ready.set()

    async def __aiter__(self) -> AsyncIterator[AudioFrame]:
        while True:
            while self._frames:
                yield self._frames.popleft()
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()


class StateFeed:
    """The current ``MediaState``, its history, and a way to wait for the next one.

    States only move forward (``NEW`` < ``CONNECTING`` < ``CONNECTED`` <
    ``FAILED``/``CLOSED``); a move backwards, or away from a final state, is
    ignored, except that ``close()`` always ends in ``CLOSED``.
    """

    _RANK: ClassVar[Mapping[MediaState, int]] = {
        MediaState.NEW: 0,
        MediaState.CONNECTING: 1,
        MediaState.CONNECTED: 2,
        MediaState.FAILED: 3,
        MediaState.CLOSED: 3,
    }

    def __init__(self) -> None:
        self._history = [MediaState.NEW]
        self._changed = asyncio.Event()

    @property
    def current(self) -> MediaState:
        """The state now."""
        return self._history[-1]

    def advance(self, state: MediaState) -> bool:
        """Move to ``state`` if that is forward; return whether it moved."""
        now = self.current
        closing = state is MediaState.CLOSED and now is not MediaState.CLOSED
        if not closing and (now in _FINAL or self._RANK[state] <= self._RANK[now]):
            return False
        self._history.append(state)
        # Wake every waiter, then give later waiters a fresh event to wait on.
        self._changed.set()
        self._changed = asyncio.Event()
        return True

    async def __aiter__(self) -> AsyncIterator[MediaState]:
        """The state now, then each new one; ends after ``FAILED`` or ``CLOSED``."""
        index = len(self._history) - 1
        while True:
            while index < len(self._history):
                state = self._history[index]
                index += 1
                yield state
                if state in _FINAL:
                    return
            await self._changed.wait()
