"""Minimal test clients: ``ClientConnection`` on ``driving.Driver``, over websockets' clients.

The SDK's own ``connect()`` is tested elsewhere; these tests need a thin,
predictable client that hands back the core's events one by one. The loop
is the SDK's one (``Driver``); what is here is the transports (websockets'
asyncio, trio and sync clients) and the tests' verbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread
from blackbox_protocol import (
    ClientConnection,
    Connected,
    ConnectionClosed,
    ConnectionState,
    Event,
    TextReceived,
)
from blackbox_protocol.driving import Driver, Transport
from websockets.asyncio.client import ClientConnection as AsyncioWebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.sync.client import ClientConnection as SyncWebSocket
from websockets.sync.client import connect as connect_sync
from websockets.trio.client import connect as connect_trio
from websockets.typing import Origin

from tests._transports import AsyncSocket, Closing

__all__ = ["CLIENT_LOGGER", "Client", "chat_sync", "chat_trio", "open_client"]

#: The test client's websockets logger: it logs the URL (token included), the emulator must not.
CLIENT_LOGGER = logging.getLogger("tests.client")
#: The longest a scenario (``chat_sync``, ``chat_trio``) may take.
_SCENARIO_BOUND: Final = 10.0
#: The sync client's longest blocking read: how late the core's deadline may be acted on.
_SYNC_POLL: Final = 0.05

E = TypeVar("E", bound=Event)


class _SyncSocket(Closing):
    """websockets' sync client as a ``Transport``, for a Driver under ``anyio.run``.

    Its ``recv`` blocks a worker thread, which cannot be cancelled: each read
    waits at most ``_SYNC_POLL``, so the Driver's deadline cancels between
    reads and no frame is lost.
    """

    def __init__(self, websocket: SyncWebSocket) -> None:
        super().__init__(websocket.protocol)
        self._ws = websocket

    async def receive(self) -> str | bytes | None:
        while True:
            try:
                return await anyio.to_thread.run_sync(self._ws.recv, _SYNC_POLL)
            except TimeoutError:
                continue
            except WebSocketClosed:
                return None

    async def send(self, frame: str) -> None:
        try:
            # Thread-safe beside the reading thread's recv, and quick on loopback.
            self._ws.send(frame)
        except WebSocketClosed as exc:
            raise ConnectionError("the WebSocket is closed") from exc


class Client:
    """One conversation from the client's side, stepped by the test."""

    def __init__(self, websocket: AsyncioWebSocket) -> None:
        self.websocket = websocket
        #: The size of every frame received, in characters or bytes.
        self.frame_sizes: list[int] = []
        self.core = ClientConnection(wall_clock=time.time)
        self.driver = Driver(self.core, AsyncSocket(websocket, self.frame_sizes))
        #: Every event handed out so far.
        self.events: list[Event] = []
        self._pending: deque[Event] = deque()

    async def initialize(
        self, call_type: str = "chat", additional_data: dict[str, Any] | None = None
    ) -> None:
        self.core.initialize(call_type, additional_data=additional_data, now=self.driver.now())
        await self._flush()

    async def send_text(self, text: str) -> None:
        self.core.send_text(text, now=self.driver.now())
        await self._flush()

    async def answer(self, sdp: str) -> None:
        self.core.answer(sdp, now=self.driver.now())
        await self._flush()

    async def reply_to_tool(self, tool_id: str, result: Any) -> None:
        self.core.reply_to_tool(tool_id, result, now=self.driver.now())
        await self._flush()

    async def terminate(self) -> None:
        self.core.terminate(now=self.driver.now())
        await self._flush()

    async def next_event(self, timeout: float = 5.0) -> Event:
        """The next event; ``TimeoutError`` if none comes in time, ``EOFError`` after the close."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                if self.core.state is ConnectionState.CLOSED:
                    raise EOFError("the connection is closed")
                self._pending.extend(await self.driver.step())
        event = self._pending.popleft()
        self.events.append(event)
        return event

    async def wait_for(self, kind: type[E], timeout: float = 5.0) -> E:
        """Skip events until one of ``kind`` comes; return it."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event(timeout)
                if isinstance(event, kind):
                    return event

    async def until_closed(self, timeout: float = 5.0) -> list[Event]:
        """Every event up to and including ``ConnectionClosed``."""
        seen: list[Event] = []
        async with asyncio.timeout(timeout):
            while not seen or not isinstance(seen[-1], ConnectionClosed):
                seen.append(await self.next_event(timeout))
        return seen

    def of(self, kind: type[E]) -> list[E]:
        """The events of ``kind`` handed out so far."""
        return [event for event in self.events if isinstance(event, kind)]

    async def _flush(self) -> None:
        self._pending.extend(await self.driver.flush())


@asynccontextmanager
async def open_client(
    url: str, *, origin: str | None = None, max_size: int | None = 2**20
) -> AsyncIterator[Client]:
    """Connect to ``url`` (the websockets default 1 MiB ``max_size`` unless told)."""
    async with connect(
        url,
        origin=None if origin is None else Origin(origin),
        max_size=max_size,
        logger=CLIENT_LOGGER,
        close_timeout=2,
    ) as websocket:
        yield Client(websocket)


async def _chat(transport: Transport, text: str) -> list[Event]:
    """Greeting, one message (when connected), terminate once it is echoed back; every event.

    The server closes the socket after the result; the scenario waits for
    that (bounded), as ``Client`` does, rather than closing first.
    """
    core = ClientConnection(wall_clock=time.time)
    driver = Driver(core, transport)
    seen: list[Event] = []
    core.initialize("chat", now=driver.now())
    pending = deque(await driver.flush())
    with anyio.fail_after(_SCENARIO_BOUND):
        while pending or core.state is not ConnectionState.CLOSED:
            if not pending:
                pending.extend(await driver.step())
                continue
            event = pending.popleft()
            seen.append(event)
            if isinstance(event, Connected):
                core.send_text(text, now=driver.now())
            elif isinstance(event, TextReceived) and (event.source, event.text) == (
                "assistant",
                text,
            ):
                core.terminate(now=driver.now())
            else:
                continue
            pending.extend(await driver.flush())
    return seen


def chat_sync(url: str, text: str) -> list[Event]:
    """A short chat with websockets' sync client; every event, in order."""
    with connect_sync(url, close_timeout=2, logger=CLIENT_LOGGER) as websocket:
        return anyio.run(_chat, _SyncSocket(websocket), text)


async def chat_trio(url: str, text: str) -> list[Event]:
    """The same chat with websockets' trio client (run it under ``trio.run``)."""
    async with connect_trio(url, close_timeout=2, logger=CLIENT_LOGGER) as websocket:
        return await _chat(AsyncSocket(websocket, []), text)
