"""websockets' connections as ``driving.Transport``, for the tests' own clients and servers.

The loop itself is the SDK's (``blackbox_protocol.driving.Driver``); this is
only the socket under it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from blackbox_protocol import ConnectionState, Event, ServerConnection
from blackbox_protocol.driving import Driver
from websockets.asyncio.client import ClientConnection as AsyncioWebSocket
from websockets.asyncio.server import ServerConnection as ServerWebSocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.protocol import Protocol
from websockets.trio.client import ClientConnection as TrioWebSocket

__all__ = ["AsyncSocket", "Closing", "React", "serve_conversation"]


class Closing:
    """The close code and reason of a websockets connection, as ``Transport`` gives them."""

    def __init__(self, protocol: Protocol) -> None:
        self._protocol = protocol

    @property
    def close_code(self) -> int | None:
        received = self._protocol.close_rcvd
        return None if received is None else received.code

    @property
    def close_reason(self) -> str:
        received = self._protocol.close_rcvd
        return "" if received is None else received.reason


class AsyncSocket(Closing):
    """websockets' asyncio or trio connection as a ``Transport``; records each frame's size."""

    def __init__(
        self, websocket: AsyncioWebSocket | TrioWebSocket | ServerWebSocket, sizes: list[int]
    ) -> None:
        super().__init__(websocket.protocol)
        self._ws = websocket
        self._sizes = sizes

    async def receive(self) -> str | bytes | None:
        # websockets' recv loses nothing when cancelled (the Driver's deadline).
        try:
            frame = await self._ws.recv()
        except WebSocketClosed:
            return None
        self._sizes.append(len(frame))
        return frame

    async def send(self, frame: str) -> None:
        try:
            await self._ws.send(frame)
        except WebSocketClosed as exc:
            # The server may refuse (and close) before the client's first frame goes out.
            raise ConnectionError("the WebSocket is closed") from exc


#: What a test server does with each event of its conversation: issue commands to
#: the core (the loop sends their frames), and await what it must (a pause).
React = Callable[[ServerConnection, Event], Awaitable[None]]


async def serve_conversation(
    websocket: ServerWebSocket, react: React, *, initialize_timeout: float = 10.0
) -> None:
    """One conversation of a test server: the core on the SDK's ``Driver``, ``react`` for the agent.

    The socket closes once the conversation is over (``should_close``).
    """
    core = ServerConnection(
        now=time.monotonic(), wall_clock=time.time, initialize_timeout=initialize_timeout
    )
    driver = Driver(core, AsyncSocket(websocket, []))
    while core.state is not ConnectionState.CLOSED:
        events = await driver.step()
        while events:
            for event in events:
                await react(core, event)
            events = await driver.flush()
        if core.should_close:
            await websocket.close()
