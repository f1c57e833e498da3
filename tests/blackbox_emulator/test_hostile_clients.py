"""The emulator as a shared server: hostile clients, and a normal conversation meanwhile.

Each test runs a real emulator on loopback, lets one kind of hostile client
loose on it, and checks two things: what the hostile client gets (and that
the emulator lets go of it), and that a normal chat through the SDK's
``connect()``, started while the hostile client is at it, completes with its
result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final

import anyio
import pytest
from blackbox_emulator import ConversationRecord, Emulator
from blackbox_emulator.records import Direction
from blackbox_protocol import (
    ClientBugError,
    Connected,
    ConnectError,
    ConnectionClosed,
    ConversationFailed,
    TextReceived,
    connect,
)
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as connect_websocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed
from websockets.exceptions import InvalidStatus

from tests.blackbox_emulator._client import CLIENT_LOGGER, open_client

pytestmark = pytest.mark.anyio

#: Every test's hang guard, in seconds.
LIMIT = 20
#: What the normal client says, and hears back at the end of the agent's reply.
HELLO = "are you still there?"
#: The file descriptors the tests with hundreds of sockets need (both ends are here).
FILES_NEEDED = 2048


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> Iterator[None]:
    """Raise the soft ``RLIMIT_NOFILE`` for the test (both ends of every socket are ours)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = FILES_NEEDED if hard == resource.RLIM_INFINITY else min(hard, FILES_NEEDED)
    if soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def normal_chat(emu: Emulator) -> str | None:
    """A short chat through the SDK: say ``HELLO``, hear it back, terminate; the status."""
    async with connect(emu.token, server=emu.server) as call:
        await call.send_text(HELLO)
        async for event in call:
            if isinstance(event, TextReceived) and (event.source, event.text) == (
                "assistant",
                HELLO,
            ):
                break
        result = await call.terminate()
    assert result is not None
    return result.status


async def chat_meanwhile(emu: Emulator, hostile: Awaitable[object] | None = None) -> str | None:
    """Run ``hostile`` and, once it has started, a normal chat; the chat's status.

    Without ``hostile``, just the chat (the hostile clients are already there).
    """
    statuses: list[str | None] = []

    async def chat() -> None:
        await anyio.sleep(0.05)
        statuses.append(await normal_chat(emu))

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(chat)
            if hostile is not None:
                await hostile
    (status,) = statuses
    return status


@asynccontextmanager
async def raw_websocket(url: str, **options: Any) -> AsyncIterator[WebSocket]:
    """websockets' own client, for frames the SDK never sends."""
    async with connect_websocket(
        url, logger=CLIENT_LOGGER, close_timeout=1, **options
    ) as websocket:
        yield websocket


async def read_to_the_end(reader: asyncio.StreamReader) -> bytes:
    """What the emulator sends until it ends the TCP connection (closed or reset)."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def read_until_closed(websocket: WebSocket) -> WebSocketClosed:
    """Read (and drop) frames until the socket closes; how it closed."""
    try:
        while True:
            await websocket.recv()
    except WebSocketClosed as closed:
        return closed


async def let_go(emu: Emulator, *, keep: int = 0) -> None:
    """Wait until the emulator holds ``keep`` connections (``AssertionError`` after ``LIMIT`` s).

    A refused handshake's socket closes a few loop turns after the client read the refusal.
    """
    deadline = time.monotonic() + LIMIT
    while emu.open_connections > keep:
        assert time.monotonic() < deadline, f"{emu.open_connections} connections still open"
        await asyncio.sleep(0.01)


def hostile_records(emu: Emulator) -> list[ConversationRecord]:
    """The records of every conversation but the normal chat's."""
    return [
        record
        for record in emu.conversations
        if not any(message.get("content") == HELLO for message in record.messages(Direction.IN))
    ]


# Idle sockets by the hundred.


async def test_tcp_connections_that_never_handshake_are_closed() -> None:
    handshake_timeout = 0.5
    async with Emulator(handshake_timeout=handshake_timeout, max_connections=10) as emu:
        silent = [await asyncio.open_connection(emu.host, emu.port) for _ in range(200)]
        # Half a request line and one header, never finished ("slowloris").
        slow = [await asyncio.open_connection(emu.host, emu.port) for _ in range(100)]
        for _, writer in slow:
            writer.write(b"GET /api/v1/ws/webCall HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        opened = time.monotonic()

        async def all_closed() -> list[bytes]:
            return await asyncio.gather(
                *(read_to_the_end(reader) for reader, _ in [*silent, *slow])
            )

        closing = asyncio.ensure_future(all_closed())
        status = await chat_meanwhile(emu)
        with anyio.fail_after(LIMIT):
            closed = await closing
        waited = time.monotonic() - opened
        for _, writer in [*silent, *slow]:
            writer.close()

        assert status == "Completed"
        assert closed == [b""] * 300
        # None of them took one of the 10 conversation slots, and none has a record.
        assert waited >= handshake_timeout * 0.9
        assert emu.refused_connections == 0
        assert len(emu.conversations) == 1


async def test_websockets_that_never_initialize_are_refused_and_freed() -> None:
    async with Emulator(initialize_timeout=0.5, max_records=None) as emu:

        async def idle() -> tuple[str | bytes, int | None]:
            async with raw_websocket(emu.url_for(emu.token)) as websocket:
                error = await websocket.recv()
                with pytest.raises(WebSocketClosed) as closed:
                    await websocket.recv()
            return error, None if closed.value.rcvd is None else closed.value.rcvd.code

        async def all_idle() -> list[tuple[str | bytes, int | None]]:
            return await asyncio.gather(*(idle() for _ in range(200)))

        idling = asyncio.ensure_future(all_idle())
        await asyncio.sleep(0.1)
        status = await chat_meanwhile(emu)
        with anyio.fail_after(LIMIT):
            outcomes = await idling
            await emu.wait_until_idle()

        assert status == "Completed"
        assert len(outcomes) == 200
        for error, code in outcomes:
            assert isinstance(error, str)
            assert '"message":"Init message not received"' in error
            assert code == 1008
        records = emu.conversations
        assert len(records) == 201
        assert sum(record.error == "Init message not received" for record in records) == 200
        assert all(record.finished for record in records)
        assert emu.open_connections == 0


# Oversized frames.


async def test_a_frame_over_the_character_limit_is_too_large_message_and_not_kept() -> None:
    async with Emulator(max_frame_size=100_000, max_record_size=64 * 1024) as emu:
        events: list[object] = []

        async def oversized() -> None:
            async with open_client(emu.url_for(emu.token)) as client:
                await client.initialize()
                await client.wait_for(Connected)
                chat = '{"type":"incomingChatMessage","content":"' + "x" * 100_000 + '"}'
                await client.websocket.send(chat)
                events.extend(await client.until_closed())

        status = await chat_meanwhile(emu, oversized())
        await emu.wait_until_idle()
        (record,) = hostile_records(emu)

    assert status == "Completed"
    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, ClientBugError)
    assert failed.error.message == "Too large message"
    assert events[-1] == ConnectionClosed(1008, "Too large message")
    # The frame was judged, then dropped from the record: it kept only small ones.
    assert record.frames_dropped == 1
    assert max(len(frame.data) for frame in record.frames) < 1000


#: A masked text frame's header that announces 30 MiB (mask key zero), for the emulator to refuse.
HEADER_OF_30_MIB: Final = (
    bytes([0x81, 0x80 | 127]) + (30 * 1024 * 1024).to_bytes(8, "big") + bytes(4)
)


async def huge_frame_refusal(
    emu: Emulator, send: Callable[[WebSocket], Awaitable[None]]
) -> str | None:
    """Send ``initialize`` then a huge frame (``send``); the chat's status, once refused."""
    closes: list[WebSocketClosed] = []

    async def huge() -> None:
        async with raw_websocket(emu.url_for(emu.token), max_size=None) as websocket:
            await websocket.send('{"type":"initialize","request":{"callType":"chat"}}')
            await send(websocket)
            closes.append(await read_until_closed(websocket))

    status = await chat_meanwhile(emu, huge())
    (closed,) = closes
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1009
    assert closed.rcvd.reason.endswith("exceeds limit of 4194304 bytes")
    await emu.wait_until_idle()
    # Nothing of it reached the conversation or its record.
    (record,) = hostile_records(emu)
    assert record.types(Direction.IN) == ["initialize"]
    assert all(len(frame.data) < 1000 for frame in record.frames)
    return status


async def test_a_frame_announcing_over_four_bytes_a_character_is_refused_unread() -> None:
    # The default limit is 1 Mi characters: websockets reads 4 MiB at most.
    async def announce(websocket: WebSocket) -> None:
        # The header and a little of the payload: the refusal comes without the rest.
        websocket.transport.write(HEADER_OF_30_MIB + b"x" * 1024)

    async with Emulator() as emu:
        assert await huge_frame_refusal(emu, announce) == "Completed"


async def test_a_deflate_bomb_is_inflated_only_up_to_the_limit() -> None:
    # 30 MiB of one letter compress to some 30 KiB on the wire (permessage-deflate).
    async def bomb(websocket: WebSocket) -> None:
        await websocket.send("x" * (30 * 1024 * 1024))

    async with Emulator() as emu:
        assert await huge_frame_refusal(emu, bomb) == "Completed"


# Floods.


async def test_a_flood_of_small_frames_is_answered_at_the_rate_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="blackbox_emulator")
    rate, burst = 100.0, 200  # the defaults
    async with Emulator() as emu:
        sent = answered = 0
        window = 0.0

        async def count_answers(websocket: WebSocket) -> None:
            nonlocal answered
            while True:
                await websocket.recv()
                answered += 1

        async def flood() -> None:
            nonlocal sent, window
            async with open_client(emu.url_for(emu.token)) as client:
                await client.initialize()
                await client.wait_for(Connected)
                chat = '{"type":"incomingChatMessage","content":"flood"}'
                started = time.monotonic()
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(count_answers, client.websocket)
                    with anyio.move_on_after(1.5):
                        while True:
                            await client.websocket.send(chat)
                            sent += 1
                            # A send into free buffers does not yield: let the loop,
                            # shared here with the emulator, run as if apart.
                            await anyio.sleep(0)
                    window = time.monotonic() - started
                    tasks.cancel_scope.cancel()
                # Go without the closing handshake: it would wait behind the flood.
                client.websocket.transport.abort()

        status = await chat_meanwhile(emu, flood())
        with anyio.fail_after(LIMIT):
            await emu.wait_until_idle()

    assert status == "Completed"
    # Each message read is answered with 3 frames (its echo and a reply of 2
    # chunks); the greeting's last 4 frames may still have been unread. The
    # bucket reads a burst, then the rate: the answers cannot pass that.
    assert answered <= 3 * (burst + rate * window + 1) + 4
    assert sent > 2 * (burst + rate * window)
    assert any("faster than the rate limit" in r.getMessage() for r in caplog.records)


async def test_large_frames_cost_more_of_the_rate() -> None:
    # Each 256 Ki-character message costs 5 tokens. Of the burst of 10, initialize
    # takes 1 and the first message 5; the second leaves -1; the fourth is read once
    # 15 - 4 tokens came back: 0.7 s after the first at the soonest.
    async with Emulator(max_frame_rate=10.0, max_frame_burst=10, max_record_size=None) as emu:
        times: list[float] = []

        async def heavy() -> None:
            async with open_client(emu.url_for(emu.token), max_size=None) as client:
                await client.initialize()
                await client.wait_for(Connected)
                text = "y" * (256 * 1024)
                for _ in range(4):
                    await client.send_text(text)
                for _ in range(4):
                    event = await client.wait_for(TextReceived, timeout=LIMIT)
                    while event.text != text or event.source != "assistant":
                        event = await client.wait_for(TextReceived, timeout=LIMIT)
                    times.append(time.monotonic())
                await client.terminate()

        status = await chat_meanwhile(emu, heavy())

    assert status == "Completed"
    assert len(times) == 4
    assert times[-1] - times[0] >= 0.5


# Frames the protocol does not have.


async def test_invalid_utf8_in_a_text_frame_closes_1007() -> None:
    async with Emulator() as emu:
        closes: list[WebSocketClosed] = []

        async def invalid() -> None:
            async with raw_websocket(emu.url_for(emu.token)) as websocket:
                await websocket.send('{"type":"initialize","request":{"callType":"chat"}}')
                await websocket.send(
                    b'{"type":"incomingChatMessage","content":"\xff\xfe"}', text=True
                )
                closes.append(await read_until_closed(websocket))

        status = await chat_meanwhile(emu, invalid())
        await emu.wait_until_idle()
        (record,) = hostile_records(emu)

    assert status == "Completed"
    (closed,) = closes
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1007
    assert "invalid start byte" in closed.rcvd.reason
    assert record.types(Direction.IN) == ["initialize"]
    assert record.finished


async def test_binary_frames_are_violations_and_the_conversation_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Lenient: strict, the first binary frame closes 1007 (test_strictness); the
    # core's own handling is what this checks.
    caplog.set_level(logging.INFO, logger="blackbox_emulator")
    async with Emulator(lenient=True) as emu:

        async def binary() -> None:
            async with open_client(emu.url_for(emu.token)) as client:
                await client.initialize()
                await client.wait_for(Connected)
                for _ in range(20):
                    await client.websocket.send(b"\x00\x01 not the protocol " * 50)
                await client.send_text("after the binary frames")
                while True:
                    event = await client.wait_for(TextReceived)
                    if event.text == "after the binary frames" and event.source == "assistant":
                        break
                await client.terminate()
                await client.until_closed()

        status = await chat_meanwhile(emu, binary())
        await emu.wait_until_idle()
        (record,) = hostile_records(emu)

    assert status == "Completed"
    assert sum(isinstance(frame.data, bytes) for frame in record.frames) == 20
    broke = [
        r for r in caplog.records if "binary frames are not part of the protocol" in r.getMessage()
    ]
    assert len(broke) == 20
    assert record.types(Direction.OUT)[-1] == "conversationResult"
    assert record.close_code == 1000


# Refusals at the door.


async def test_wrong_paths_get_404_and_plain_http_is_let_go() -> None:
    async with Emulator() as emu:
        statuses: list[int] = []

        async def wrong() -> None:
            for path in ["/", "/api/v1/ws/webcall", "/api/v1/ws/webCall/x", "/favicon.ico"] * 10:
                with pytest.raises(InvalidStatus) as refused:
                    async with raw_websocket(f"{emu.server}{path}?token={emu.token}"):
                        pass
                statuses.append(refused.value.response.status_code)
            # The right path without the upgrade headers: admitted, then refused by websockets.
            for _ in range(10):
                reader, writer = await asyncio.open_connection(emu.host, emu.port)
                writer.write(b"GET /api/v1/ws/webCall HTTP/1.1\r\nHost: x\r\n\r\n")
                status_line = await reader.readuntil(b"\r\n")
                writer.close()
                statuses.append(int(status_line.split()[1]))

        status = await chat_meanwhile(emu, wrong())
        await emu.wait_until_idle()

        assert status == "Completed"
        assert statuses == [404] * 40 + [426] * 10
        assert len(emu.conversations) == 1
        await let_go(emu)


async def test_missing_tokens_get_the_error_frame() -> None:
    async with Emulator() as emu:
        errors: list[str] = []

        async def tokenless() -> None:
            async def one() -> None:
                async with open_client(emu.url_for(None)) as client:
                    await client.initialize()
                    events = await client.until_closed()
                (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
                errors.append(str(failed.error))

            await asyncio.gather(*(one() for _ in range(50)))

        status = await chat_meanwhile(emu, tokenless())
        await emu.wait_until_idle()
        records = emu.conversations

    assert status == "Completed"
    assert len(errors) == 50
    assert all("Missing token" in error for error in errors)
    assert sum(record.error == "Missing token" for record in records) == 50
    assert sum(record.close_code == 1008 for record in records) == 50


async def test_past_max_connections_the_handshake_gets_503(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="blackbox_emulator")
    async with Emulator(max_connections=3) as emu, AsyncExitStack() as holding:
        held = [
            await holding.enter_async_context(open_client(emu.url_for(emu.token))) for _ in range(3)
        ]
        for client in held:
            await client.initialize()
            await client.wait_for(Connected)
        assert emu.open_connections == 3

        with pytest.raises(InvalidStatus) as refused:
            async with raw_websocket(emu.url_for(emu.token)):
                pass
        with anyio.fail_after(LIMIT), pytest.raises(ConnectError) as sdk_refused:
            async with connect(emu.token, server=emu.server):
                pass

        # One conversation ends: its slot is free again.
        await held[0].terminate()
        await held[0].until_closed()
        await held[0].websocket.close()
        await let_go(emu, keep=2)
        status = await chat_meanwhile(emu)

    response = refused.value.response
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert b"the most it takes at once (max_connections)" in response.body
    assert sdk_refused.value.status == 503
    assert status == "Completed"
    assert emu.refused_connections == 2
    assert len(emu.conversations) == 4
    assert sum("HTTP 503" in r.getMessage() for r in caplog.records) == 2


# What the emulator keeps.


async def test_records_are_dropped_oldest_first() -> None:
    async with Emulator(max_records=3) as emu:
        statuses = [await chat_meanwhile(emu) for _ in range(5)]
        await emu.wait_until_idle()

        assert statuses == ["Completed"] * 5
        assert [record.number for record in emu.conversations] == [3, 4, 5]
        assert emu.dropped_records == 2
        assert "conversations=5" in repr(emu)


async def test_a_record_keeps_so_many_frames_and_counts_the_rest() -> None:
    async with Emulator(max_record_frames=6) as emu:
        status = await chat_meanwhile(emu)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    # initialize, event connection, event opened, the greeting's 3 chunks: then full.
    assert status == "Completed"
    assert len(record.frames) == 6
    assert record.types(Direction.IN) == ["initialize"]
    # incomingChatMessage, its echo, "You said: " and HELLO, terminate, conversationResult.
    assert record.frames_dropped == 6
    assert "frames_dropped=6" in repr(record)


async def test_no_records_at_all() -> None:
    async with Emulator(max_records=0) as emu:
        status = await chat_meanwhile(emu)
        await emu.wait_until_idle()

        assert status == "Completed"
        assert emu.conversations == []
        assert emu.dropped_records == 1


# A client that reads nothing.


async def test_a_client_that_reads_nothing_is_aborted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="blackbox_emulator")
    async with Emulator(idle_timeout=0.5, max_record_size=None) as emu:

        async def deaf() -> None:
            # A tiny receive buffer, websockets told to stop reading after one
            # frame, and no compression (it would shrink the echoes to nothing).
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (emu.host, emu.port))
            async with raw_websocket(
                emu.url_for(emu.token), sock=sock, max_queue=1, compression=None
            ) as websocket:
                await websocket.send('{"type":"initialize","request":{"callType":"chat"}}')
                chat = '{"type":"incomingChatMessage","content":"' + "z" * 500_000 + '"}'
                # Each is echoed twice (as the user's text, and "You said: "):
                # 12 MB the client never reads, past every buffer on the way.
                with contextlib.suppress(WebSocketClosed):
                    for _ in range(12):
                        await websocket.send(chat)
                await emu.wait_until_idle()

        status = await chat_meanwhile(emu, deaf())
        with anyio.fail_after(LIMIT):
            await emu.wait_until_idle()
        (deaf_record,) = [r for r in emu.conversations if r.close_code is None]

    assert status == "Completed"
    assert deaf_record.finished
    assert any("read nothing for 0.5 s" in r.getMessage() for r in caplog.records)


# Stopping with hostile clients still connected.


async def test_stop_lets_go_of_sockets_still_in_their_handshake() -> None:
    # Longer than the hang guard: a stop that waited for their handshake timeout fails.
    emu = Emulator(handshake_timeout=2 * LIMIT)
    await emu.start()
    silent = [await asyncio.open_connection(emu.host, emu.port) for _ in range(50)]
    async with open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)
        with anyio.fail_after(LIMIT):
            await emu.stop(timeout=1.0)
        events = await client.until_closed()
        ends = await asyncio.gather(*(read_to_the_end(reader) for reader, _ in silent))
    for _, writer in silent:
        writer.close()

    assert ends == [b""] * 50
    assert events[-1] == ConnectionClosed(1001, "")


def test_limits_must_be_positive() -> None:
    for option in (
        "handshake_timeout",
        "idle_timeout",
        "initialize_timeout",
        "max_connections",
        "max_frame_size",
        "max_frame_rate",
        "max_frame_burst",
        "max_record_frames",
        "max_record_size",
    ):
        with pytest.raises(ValueError, match=f"{option} must be above 0"):
            Emulator(**{option: 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_records must be 0 or more"):
        Emulator(max_records=-1)
