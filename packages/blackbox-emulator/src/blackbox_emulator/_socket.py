"""An accepted WebSocket as the ``driving.Transport`` a conversation's ``Driver`` runs on.

The limits of a shared server act here, below the protocol: frames are read
no faster than the connection's token bucket allows (unread frames wait in
the socket: the client's sends slow down, as with any busy server), and a
frame or the close that cannot be sent for ``idle_timeout`` (a client that
reads nothing) aborts the connection. Every frame in and out, those sent past
the core included, is written to the conversation's record, with its
wall-clock time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable
from typing import Final

import anyio
from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed

from blackbox_emulator._bucket import TokenBucket, frame_cost
from blackbox_emulator.records import ConversationRecord, Direction

__all__ = ["RecordedSocket", "Stalled"]

_log = logging.getLogger("blackbox_emulator.conversation")

#: The close code websockets reports when no close frame came (never on the wire).
_NO_CLOSE_FRAME: Final = 1006
#: The longest wait for the sent frames to leave before a connection is dropped.
_DRAIN_BOUND: Final = 1.0


class Stalled(Exception):
    """A send or the close waited ``idle_timeout`` on a client that reads nothing: aborted."""


class RecordedSocket:
    """One accepted socket: paced reads, bounded sends, every frame recorded.

    Args:
        websocket: the accepted socket.
        record: where the frames are written.
        bucket: paces the reading of the client's frames; ``None``: no limit.
        idle_timeout: seconds a frame, or the close, may wait to be sent;
            then the connection is aborted (``Stalled``). ``None``: no limit.
    """

    def __init__(
        self,
        websocket: WebSocket,
        record: ConversationRecord,
        *,
        bucket: TokenBucket | None,
        idle_timeout: float | None,
    ) -> None:
        self._ws = websocket
        self._record = record
        self._bucket = bucket
        self._idle_timeout = idle_timeout
        #: Whether reading has been held back by the bucket (logged once).
        self._throttled = False
        #: Whether a send found the socket closed: the client went away.
        self.gone = False

    # driving.Transport.

    async def receive(self) -> str | bytes | None:
        """The next frame, recorded, once the bucket has a token for it; ``None`` once closed.

        Safe to cancel: the bucket's wait takes nothing, and websockets'
        ``recv`` loses no frame when cancelled.
        """
        if self._bucket is not None:
            delay = self._bucket.delay(now=time.monotonic())
            if delay > 0:
                if not self._throttled:
                    self._throttled = True
                    _log.warning(
                        "conversation %d: the client sends frames faster than the rate limit:"
                        " reading them is slowed down",
                        self._record.number,
                    )
                await anyio.sleep(delay)
        try:
            frame = await self._ws.recv()
        except WebSocketClosed:
            return None
        if self._bucket is not None:
            self._bucket.take(frame_cost(frame), now=time.monotonic())
        self._record.add(Direction.IN, frame, time.time())
        return frame

    async def send(self, frame: str | bytes) -> None:
        """Record ``frame`` and send it (a frame past the core may be bytes).

        Raises:
            ConnectionError: the socket is closed (``gone`` is then true).
            Stalled: the send waited ``idle_timeout``; the connection was aborted.
        """
        if self.gone:
            raise ConnectionError("the client went away")
        self._record.add(Direction.OUT, frame, time.time())
        try:
            await self._unless_stalled(self._ws.send(frame))
        except WebSocketClosed as exc:
            self.gone = True
            raise ConnectionError("the client went away") from exc

    @property
    def close_code(self) -> int | None:
        """The client's close code; ``None`` when no close frame came."""
        received = self._ws.protocol.close_rcvd
        return None if received is None else received.code

    @property
    def close_reason(self) -> str:
        """The client's close reason."""
        received = self._ws.protocol.close_rcvd
        return "" if received is None else received.reason

    # The emulator's own.

    @property
    def final_close_code(self) -> int | None:
        """The close code for the record once closed: ``None`` when no close frame came."""
        code = self._ws.close_code
        return None if code == _NO_CLOSE_FRAME else code

    async def close(self, code: int, reason: str) -> None:
        """Close the socket, bounded by ``idle_timeout``.

        Raises:
            Stalled: the close waited ``idle_timeout``; the connection was aborted.
        """
        await self._unless_stalled(self._ws.close(code, reason))

    def abort(self) -> None:
        """Drop the TCP connection at once (no close frame)."""
        self._ws.transport.abort()

    async def drop_after_sending(self) -> None:
        """Drop the TCP connection (no close frame) once what was sent has left.

        An abort discards the transport's buffer: wait (at most
        ``_DRAIN_BOUND``) for it to empty, so that the last frames (the
        result) reach the client before the connection goes.
        """
        transport = self._ws.transport
        with anyio.move_on_after(_DRAIN_BOUND):
            while transport.get_write_buffer_size() > 0:
                await anyio.sleep(0.01)
        transport.abort()

    async def record_the_rest(self) -> None:
        """Record, unpaced, what the client sent before the socket closed."""
        while True:
            try:
                frame = await self._ws.recv()
            except WebSocketClosed:
                return
            self._record.add(Direction.IN, frame, time.time())

    async def _unless_stalled(self, sending: Awaitable[None]) -> None:
        """Await a send or the close; abort the connection past ``idle_timeout``.

        Only a client that reads nothing makes a send wait (websockets waits
        for its write buffer to drain), and waiting on it forever would hold
        the socket and the conversation's task for good.
        """
        limit = math.inf if self._idle_timeout is None else self._idle_timeout
        with anyio.move_on_after(limit) as waiting:
            await sending
        if waiting.cancelled_caught:
            _log.warning(
                "conversation %d: the client read nothing for %g s: connection aborted",
                self._record.number,
                self._idle_timeout,
            )
            self.abort()
            raise Stalled
