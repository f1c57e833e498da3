"""Minimal test clients: ``ClientConnection`` over websockets' asyncio, sync and trio clients.

The SDK's own driver is built elsewhere; these tests need only a thin,
predictable one: feed every frame to the core, hand back its events one by
one, send what it queues.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from blackbox_protocol import (
    ClientConnection,
    Connected,
    ConnectionClosed,
    ConnectionState,
    Event,
    TextReceived,
)
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.sync.client import connect as connect_sync
from websockets.trio.client import connect as connect_trio
from websockets.typing import Origin

__all__ = ["CLIENT_LOGGER", "Client", "chat_sync", "chat_trio", "open_client"]

#: The test client's websockets logger: it logs the URL (token included), the emulator must not.
CLIENT_LOGGER = logging.getLogger("tests.client")

E = TypeVar("E", bound=Event)


class Client:
    """One conversation from the client's side."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.core = ClientConnection()
        #: Every event handed out so far.
        self.events: list[Event] = []
        #: The size of every frame received, in characters or bytes.
        self.frame_sizes: list[int] = []
        self._pending: deque[Event] = deque()

    async def initialize(
        self, call_type: str = "chat", additional_data: dict[str, Any] | None = None
    ) -> None:
        self.core.initialize(call_type, additional_data=additional_data, now=time.time())
        await self._flush()

    async def send_text(self, text: str) -> None:
        self.core.send_text(text, now=time.time())
        await self._flush()

    async def answer(self, sdp: str) -> None:
        self.core.answer(sdp, now=time.time())
        await self._flush()

    async def reply_to_tool(self, tool_id: str, result: Any) -> None:
        self.core.reply_to_tool(tool_id, result, now=time.time())
        await self._flush()

    async def terminate(self) -> None:
        self.core.terminate(now=time.time())
        await self._flush()

    async def next_event(self, timeout: float = 5.0) -> Event:
        """The next event; ``TimeoutError`` if none comes in time, ``EOFError`` after the close."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                await self._receive()
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

    async def _receive(self) -> None:
        if self.core.state.value == "closed":
            raise EOFError("the connection is closed")
        try:
            frame = await self.websocket.recv()
        except WebSocketClosed as closed:
            code = None if closed.rcvd is None else closed.rcvd.code
            reason = "" if closed.rcvd is None else closed.rcvd.reason
            self.core.receive_close(code, reason)
        else:
            self.frame_sizes.append(len(frame))
            self.core.receive_frame(frame, now=time.time())
        self._pending.extend(self.core.events_received())
        await self._flush()

    async def _flush(self) -> None:
        for frame in self.core.frames_to_send():
            try:
                await self.websocket.send(frame)
            except WebSocketClosed:
                # The server may refuse (and close) before the client's first
                # frame goes out; the close is read, and reported, by _receive.
                return


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


class _ChatScenario:
    """Greeting, one message (when connected), terminate once it is echoed back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.core = ClientConnection()
        self.events: list[Event] = []
        self.core.initialize("chat", now=time.time())

    @property
    def over(self) -> bool:
        return self.core.state is ConnectionState.CLOSED

    def received(self, frame: str | bytes) -> list[str]:
        self.core.receive_frame(frame, now=time.time())
        return self._act()

    def closed(self, error: WebSocketClosed) -> None:
        rcvd = error.rcvd
        self.core.receive_close(
            None if rcvd is None else rcvd.code, "" if rcvd is None else rcvd.reason
        )
        self._act()

    def _act(self) -> list[str]:
        for event in self.core.events_received():
            self.events.append(event)
            if isinstance(event, Connected):
                self.core.send_text(self.text, now=time.time())
            elif isinstance(event, TextReceived) and (event.source, event.text) == (
                "assistant",
                self.text,
            ):
                self.core.terminate(now=time.time())
        return self.core.frames_to_send()


def chat_sync(url: str, text: str) -> list[Event]:
    """A short chat with websockets' sync client; every event, in order."""
    chat = _ChatScenario(text)
    with connect_sync(url, close_timeout=2, logger=CLIENT_LOGGER) as websocket:
        for frame in chat.core.frames_to_send():
            websocket.send(frame)
        while not chat.over:
            try:
                received = websocket.recv(timeout=5)
            except WebSocketClosed as closed:
                chat.closed(closed)
            else:
                for frame in chat.received(received):
                    websocket.send(frame)
    return chat.events


async def chat_trio(url: str, text: str) -> list[Event]:
    """The same chat with websockets' trio client (run it under ``trio.run``)."""
    chat = _ChatScenario(text)
    async with connect_trio(url, close_timeout=2, logger=CLIENT_LOGGER) as websocket:
        for frame in chat.core.frames_to_send():
            await websocket.send(frame)
        while not chat.over:
            try:
                received = await websocket.recv()
            except WebSocketClosed as closed:
                chat.closed(closed)
            else:
                for frame in chat.received(received):
                    await websocket.send(frame)
    return chat.events
