"""One driving loop: a sans-IO connection run over a transport, on anyio.

"A frame, the core's deadline or the close in; frames and events out" is
written here once, and used by every driver of a connection: the SDK's own
``connect()``, the emulator's conversations and the tests' clients. A
``Driver`` owns no policy: what to do with the events (answer an offer,
run a tool, close the socket once ``connection.should_close``) is its
user's.

Time: deadlines and turns run on ``clock`` (monotonic by default); the
frames' wire timestamps come from the connection's own ``wall_clock``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import anyio

from blackbox_protocol.connection import ClientConnection, ConnectionState, ServerConnection
from blackbox_protocol.errors import LocalProtocolError
from blackbox_protocol.events import Event

__all__ = ["Driver", "Transport"]

C = TypeVar("C", ClientConnection, ServerConnection)


class Transport(Protocol):
    """A message transport (a WebSocket) as a ``Driver`` needs it.

    ``receive`` must be safe to cancel (no message is lost): the driver
    cancels it when the core's deadline comes first.
    """

    async def receive(self) -> str | bytes | None:
        """The next message, or ``None`` once the transport has closed."""
        ...

    async def send(self, frame: str) -> None:
        """Send one text message.

        Raises:
            ConnectionError: the transport can send no more (``receive`` then
                reports the close). Anything else propagates to the caller.
        """
        ...

    @property
    def close_code(self) -> int | None:
        """The peer's close code once closed; ``None`` when no close frame came."""
        ...

    @property
    def close_reason(self) -> str:
        """The peer's close reason, once closed."""
        ...


class Driver(Generic[C]):
    """Runs ``connection`` over ``transport``: one input at a time, and what it asks for.

    ``step`` waits for the next input and returns the events it caused;
    after a command to the connection (``send_text``, ``accept``, ...),
    ``flush`` sends its frames and returns its events. One task steps at a
    time; any task may flush.

    Args:
        connection: the sans-IO end to drive.
        transport: the socket it speaks over.
        clock: seconds that never go backwards, the connection's ``now``.
    """

    def __init__(
        self,
        connection: C,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection: C = connection
        self.transport = transport
        #: The connection's ``now``.
        self.now: Callable[[], float] = clock
        # Uncontended as a rule: taking it must not yield (each yield is a loop turn).
        self._send_lock = anyio.Lock(fast_acquire=True)
        #: The wait of the ``step`` in progress, moved when a command moves the deadline.
        self._waiting: anyio.CancelScope | None = None
        #: Whether ``wake`` cut that wait short.
        self._woken = False

    async def step(self) -> list[Event]:
        """Wait for one input (a frame, the core's deadline, the close), feed it, flush.

        Returns:
            The events it caused (and those of commands not flushed since).

        Raises:
            LocalProtocolError: the connection is closed already.
        """
        connection = self.connection
        if connection.state is ConnectionState.CLOSED:
            raise LocalProtocolError("the connection is closed")
        self._woken = False
        with anyio.CancelScope(deadline=self._anyio_deadline()) as waiting:
            self._waiting = waiting
            try:
                frame = await self.transport.receive()
            finally:
                self._waiting = None
            if frame is None:
                transport = self.transport
                connection.receive_close(transport.close_code, transport.close_reason)
            else:
                connection.receive_frame(frame, now=self.now())
        if waiting.cancelled_caught and not self._woken:
            connection.handle_timer(now=self.now())
        return await self.flush()

    def wake(self) -> None:
        """End the wait of a ``step`` in progress with no input, so that its caller acts.

        For news from elsewhere (a task of the caller's finished): the step
        returns the events queued meanwhile, if any. Nothing happens when no
        step waits.
        """
        if self._waiting is not None:
            self._woken = True
            self._waiting.cancel()

    async def flush(self) -> list[Event]:
        """Send the frames the connection queued, then take its events.

        A deadline the command moved (``terminate``'s, a tool's) moves the
        wait of a ``step`` in progress too.
        """
        async with self._send_lock:
            for frame in self.connection.frames_to_send():
                try:
                    await self.transport.send(frame)
                except ConnectionError:
                    # The reader sees the same end and reports it as the close.
                    break
        if self._waiting is not None:
            self._waiting.deadline = self._anyio_deadline()
        return self.connection.events_received()

    def _anyio_deadline(self) -> float:
        """The connection's next deadline, on anyio's clock."""
        deadline = self.connection.next_deadline()
        if deadline is None:
            return math.inf
        return anyio.current_time() + (deadline - self.now())
