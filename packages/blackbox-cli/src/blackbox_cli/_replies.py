"""Knowing when the agent has answered: the protocol has no end-of-reply marker.

A reply is over when the agent has said something and then nothing more for
a pause (``--reply-pause``); a reply that never starts is given up on after
``--reply-timeout``.
"""

from __future__ import annotations

import anyio
from blackbox_protocol import Event, TextReceived

__all__ = ["ReplyTracker"]


class ReplyTracker:
    """Watches the agent's text to tell when it has finished talking."""

    def __init__(self, *, pause: float, timeout: float) -> None:
        self._pause = pause
        self._timeout = timeout
        self._activity = anyio.Event()
        self._chunks = 0

    def saw(self, event: Event) -> None:
        """Note an event; the agent's text restarts the pause."""
        if isinstance(event, TextReceived) and event.source == "assistant":
            self._chunks += 1
            self._activity.set()
            self._activity = anyio.Event()

    async def settle(self, *, expect_reply: bool) -> bool:
        """Wait until the agent has finished talking.

        Args:
            expect_reply: wait (up to the timeout) for the agent to start talking.

        Returns:
            False when a reply was expected and none started in time.
        """
        if expect_reply:
            start = self._chunks
            with anyio.move_on_after(self._timeout):
                while self._chunks == start:
                    await self._activity.wait()
            if self._chunks == start:
                return False
        while True:
            with anyio.move_on_after(self._pause) as pause:
                await self._activity.wait()
            if pause.cancelled_caught:
                return True
