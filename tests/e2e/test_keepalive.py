"""Keepalive: a peer that stops answering pings is dropped; one that answers is kept.

The deaf peer is a raw TCP server on the test's own loop: websockets' sans-IO
``ServerProtocol`` does the opening handshake, the server core accepts the
conversation, and from then on every byte is read and ignored, pings
included, so no pong ever comes and no close frame either.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest
from blackbox_emulator import EmulatorThread
from blackbox_protocol import (
    Call,
    Connected,
    ConnectionState,
    DisconnectedError,
    InitializeReceived,
    ServerConnection,
    Timeouts,
    connect,
)
from websockets.frames import Frame
from websockets.http11 import Request
from websockets.server import ServerProtocol

pytestmark = pytest.mark.anyio

LIMIT = 15
TIMEOUTS = Timeouts(ping_interval=0.2, ping_timeout=0.5)


async def deaf_peer(stream: anyio.abc.SocketStream) -> None:
    """Accept one conversation, then read everything and answer nothing."""
    async with stream:
        protocol = ServerProtocol()
        core = ServerConnection(now=time.time())
        while core.state.value == "awaiting initialize":
            protocol.receive_data(await stream.receive())
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                else:
                    assert isinstance(event, Frame)
                    core.receive_frame(bytes(event.data).decode(), now=time.time())
            for data in protocol.data_to_send():
                await stream.send(data)
        (initialized,) = core.events_received()
        assert isinstance(initialized, InitializeReceived)
        core.accept(job_id="deaf-1", now=time.time())
        for frame in core.frames_to_send():
            protocol.send_text(frame.encode())
        for data in protocol.data_to_send():
            await stream.send(data)
        # Deaf from here on: the client's pings reach no protocol, so no pong.
        try:
            while True:
                await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


@asynccontextmanager
async def serving_deaf_peer() -> AsyncIterator[str]:
    """The ``server=`` of a deaf peer listening on loopback for the block."""
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as group,
    ):
        group.start_soon(listener.serve, deaf_peer)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        yield f"ws://127.0.0.1:{port}"
        group.cancel_scope.cancel()


async def listen(server: str, calls: list[Call], opened: list[float]) -> None:
    """Connect, note when, and iterate to the end: the deaf peer sends only ``Connected``."""
    async with connect("token", server=server, timeouts=TIMEOUTS) as call:
        opened.append(time.monotonic())
        calls.append(call)
        async for event in call:
            assert isinstance(event, Connected)


async def test_a_peer_that_never_answers_pings_is_dropped() -> None:
    calls: list[Call] = []
    opened: list[float] = []
    with anyio.fail_after(LIMIT):
        async with serving_deaf_peer() as server:
            with pytest.raises(DisconnectedError) as raised:
                await listen(server, calls, opened)
            elapsed = time.monotonic() - opened[0]

    assert raised.value.code is None
    assert raised.value.reason == "no pong within 0.5 s"
    # The first ping after 0.2 s, its pong awaited 0.5 s.
    assert 0.6 <= elapsed < 2
    assert calls[0].state is ConnectionState.CLOSED


async def test_a_peer_that_answers_pings_is_kept(blackbox_emulator: EmulatorThread) -> None:
    with anyio.fail_after(LIMIT):
        # A generous pong timeout: a slow machine must not fail a healthy peer.
        timeouts = Timeouts(ping_interval=0.1, ping_timeout=1.0)
        async with connect(
            blackbox_emulator.token, server=blackbox_emulator.server, timeouts=timeouts
        ) as call:
            # Many pings, and longer than the first ping's interval plus its pong timeout.
            await anyio.sleep(1.5)
            assert call.state is ConnectionState.ACTIVE
            result = await call.terminate()

    assert result is not None
    assert result.status == "Completed"
