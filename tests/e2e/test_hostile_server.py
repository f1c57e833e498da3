"""The driver against a hostile server: every misbehaviour ends typed and bounded, or is survived.

A real server in the test (``tests.e2e._hostile``, or raw TCP for handshakes
that never end) sends what the service never should: an offer or a frame over
the limits, a flood of frames, no HTTP response or one without end, HTTP
refusals and a forged handshake, a close mid-call, a repeated tool request id,
a tool request too deep to decode, a voice call ended before its audio connected.
Each ends in a typed error within its bound, or is reported as a
``ProtocolViolation`` while the call goes on; unread events stay bounded, and
a voice call's recording stays a valid WAV. Voice tests run on asyncio only
(aiortc); the rest on asyncio and trio.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from blackbox_emulator.speech import AGENT_TONES_HZ, dominant_frequencies
from blackbox_media_file import FileSession
from blackbox_protocol import (
    DEFAULT_MAX_PENDING_TOOLS,
    DEFAULT_MAX_SDP_SIZE,
    Call,
    Connected,
    ConnectError,
    ConnectionState,
    ConversationEnded,
    DisconnectedError,
    Event,
    EventsDropped,
    LocalProtocolError,
    MediaNotConnected,
    OfferReceived,
    ProtocolViolation,
    RemoteProtocolError,
    ReplyEnded,
    ReplyStarted,
    Retry,
    TextReceived,
    Timeouts,
    ToolRequested,
    connect,
)
from blackbox_protocol.messages import SdpAnswer, Terminate, WebsocketToolResponse
from blackbox_protocol.turns import MAX_TURN_CHUNKS
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from tests.blackbox_media_file._audio import read_wav
from tests.e2e._calls import Outcome, run_to_the_end
from tests.e2e._hostile import Peer, hostile_server
from tests.e2e._threaded_server import threaded_tcp_server

pytestmark = pytest.mark.anyio

#: The error result of a tool request over the bound of requests awaiting a reply.
BUSY = f"{DEFAULT_MAX_PENDING_TOOLS} tool requests await a reply already"
#: The hang guard of every test, in seconds.
LIMIT = 15
#: Short waits, so that each test takes a few seconds at most.
QUICK = Timeouts(open=1, session=2, offer=1, media=2, terminate=2, close=1)
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


async def events_until_the_end(call: Call) -> list[Event]:
    """Every event the call yields until its iteration ends (or raises)."""
    return [event async for event in call]


def voice(recording: Path) -> dict[str, Any]:
    """``connect()``'s options for a voice call recording the agent to ``recording``."""
    return {"call_type": "webCall", "media": FileSession(record=recording), "timeouts": QUICK}


def assert_valid_wav(path: Path) -> int:
    """A readable 16-bit WAV whose header counts what it holds; return its samples."""
    samples, rate, channels = read_wav(path)
    assert rate > 0
    assert channels == 1
    assert samples.dtype == np.int16
    return int(samples.shape[1])


# Over the size limits.


@asyncio_only
async def test_an_offer_over_the_sdp_limit_fails_the_call_at_once(tmp_path: Path) -> None:
    sdp = "v=0\r\n" + "a=x\r\n" * (DEFAULT_MAX_SDP_SIZE // 5)

    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.offer(sdp)
        await peer.until_closed()

    recording = tmp_path / "agent.wav"
    outcome = Outcome()
    with (
        hostile_server(script) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(RemoteProtocolError) as raised,
    ):
        await run_to_the_end(outcome, "token", server.url, **voice(recording))

    # Not the offer's deadline: nothing else could come, so the call fails at once.
    assert str(raised.value) == (
        f"the offer cannot be answered: an SDP of {len(sdp)} characters "
        f"is over the {DEFAULT_MAX_SDP_SIZE} limit"
    )
    assert not any(isinstance(e, OfferReceived) for e in outcome.events)
    (peer,) = server.peers
    assert not any(isinstance(m, SdpAnswer) for m in peer.received)
    assert assert_valid_wav(recording) == 0


async def test_a_frame_over_the_core_limit_is_a_violation_and_the_call_goes_on() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.say("x" * 2000)
        await peer.say("still here")
        await peer.end()
        await peer.until_closed()

    with hostile_server(script) as server, anyio.fail_after(LIMIT):
        async with connect("token", server=server.url, max_frame_size=1000) as call:
            events = await events_until_the_end(call)

    (violation,) = [e for e in events if isinstance(e, ProtocolViolation)]
    assert violation.reason.endswith(" characters is over the 1000 limit")
    assert [e.text for e in events if isinstance(e, TextReceived)] == ["still here"]
    assert isinstance(events[-1], ConversationEnded)
    assert call.state is ConnectionState.CLOSED


async def test_a_frame_over_the_websocket_limit_is_a_disconnection() -> None:
    # max_frame_size=1000 characters lets the WebSocket take 4000 bytes.
    closed: list[int | None] = []

    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.say("x" * 5000)
        await peer.until_closed()
        closed.append(peer.websocket.close_code)

    with (
        hostile_server(script) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(DisconnectedError) as raised,
    ):
        await run_to_the_end(Outcome(), "token", server.url, max_frame_size=1000)

    assert raised.value.code is None
    assert "exceeds limit of 4000 bytes" in raised.value.reason
    assert closed == [1009]


# A flood of frames, read slowly or not at all.

FLOOD = 100_000


async def flood(peer: Peer) -> None:
    """``FLOOD`` small text frames as fast as the server can write, then the result."""
    await peer.accept()
    for number in range(FLOOD):
        await peer.say(str(number))
    await peer.end()
    await peer.until_closed(timeout=60)


async def test_a_flood_nobody_reads_keeps_the_newest_events_and_counts_the_rest() -> None:
    with hostile_server(flood) as server, anyio.fail_after(60):
        async with connect("token", server=server.url, max_events=100) as call:
            while call.state not in (ConnectionState.ENDED, ConnectionState.CLOSED):
                await anyio.sleep(0.05)
            events = await events_until_the_end(call)

    # Connected, the reply's start and the first texts went; the last 99 texts,
    # the reply's end (one turn: the result ended it) and the end stayed.
    dropped, *texts, reply, ended = events
    assert dropped == EventsDropped(FLOOD + 3 - 100)
    assert [e.text for e in texts if isinstance(e, TextReceived)] == [
        str(number) for number in range(FLOOD - 99, FLOOD)
    ]
    assert isinstance(reply, ReplyEnded)
    assert reply.turn.truncated  # a turn keeps its start only, whatever the flood
    assert len(reply.turn.chunks) == MAX_TURN_CHUNKS
    assert isinstance(ended, ConversationEnded)
    assert call.result is not None
    assert call.result.status == "Completed"


async def test_a_flood_read_slowly_loses_only_what_it_counts() -> None:
    seen: list[Event] = []
    with hostile_server(flood) as server, anyio.fail_after(60):
        async with connect("token", server=server.url, max_events=50) as call:
            async for event in call:
                seen.append(event)
                if len(seen) % 100 == 0:
                    await anyio.sleep(0.01)  # a slow app

    # In order, each event is delivered or counted by the EventsDropped before it:
    # Connected is the first event of the call, ReplyStarted the second, then
    # text n is number n + 2, and the reply's end comes last but the result.
    numbers = {Connected: 0, ReplyStarted: 1, ReplyEnded: FLOOD + 2}
    position = 0
    for each in seen[:-1]:
        if isinstance(each, EventsDropped):
            position += each.count
            continue
        number = int(each.text) + 2 if isinstance(each, TextReceived) else numbers[type(each)]
        assert number == position, (each, position)
        position += 1
    assert position == FLOOD + 3
    assert isinstance(seen[-1], ConversationEnded)
    assert any(isinstance(e, EventsDropped) for e in seen)


async def test_max_events_under_one_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="max_events must be 1 or more, not 0"):
        async with connect("token", server="ws://127.0.0.1:9", max_events=0):
            pytest.fail("refused before connecting")


# A handshake that never completes.


async def no_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """TCP accepted, the request read, and not a byte of answer."""
    await reader.readuntil(b"\r\n\r\n")
    await reader.read()  # until the client gives up


async def endless_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 101 whose header lines keep coming, slowly, within every size limit."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
    for number in range(100):
        writer.write(b"X-Still-Coming: %d\r\n" % number)
        await writer.drain()
        await asyncio.sleep(0.05)


async def header_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 101 whose header lines come as fast as they can, without end."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
    while not reader.at_eof():
        writer.write(b"X-Flood: 1\r\n" * 100)
        await writer.drain()
        await asyncio.sleep(0)


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Not HTTP at all, and the connection held open."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"SSH-2.0-x\r\n")
    await reader.read()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The request read, then the connection closed without a word."""
    await reader.readuntil(b"\r\n\r\n")


@pytest.mark.parametrize(
    ("handler", "reason"),  # the reason is a regular expression
    [
        (no_response, r"timed out after 0\.5 s"),
        (endless_headers, r"timed out after 0\.5 s"),
        (header_flood, "did not receive a valid HTTP response: .* headers"),
        (garbage, r"did not receive a valid HTTP response: invalid HTTP status line: SSH-2\.0-x"),
        (
            hang_up,
            "did not receive a valid HTTP response: "
            "connection closed while reading HTTP status line",
        ),
    ],
    ids=["no-response", "endless-headers", "header-flood", "garbage", "hang-up"],
)
async def test_a_handshake_that_never_completes_is_a_connect_error(
    handler: Any, reason: str
) -> None:
    with (
        threaded_tcp_server(handler) as port,
        anyio.fail_after(LIMIT),
        pytest.raises(ConnectError) as raised,
    ):
        await run_to_the_end(
            Outcome(), "token", f"ws://127.0.0.1:{port}", timeouts=Timeouts(open=0.5)
        )

    assert raised.value.status is None
    where = re.escape(f"cannot connect to ws://127.0.0.1:{port}: ")
    assert re.fullmatch(where + reason, str(raised.value)), str(raised.value)


# HTTP refusals, a forged handshake, and what Retry does with them.

RETRY = Retry(attempts=2, first_delay=0.01)


def refuse_with(status: int, requests: list[str]) -> Any:
    def process_request(connection: ServerConnection, request: Request) -> Response:
        requests.append(request.path)
        return connection.respond(status, f"refused: {status}\n")

    return process_request


async def never_reached(peer: Peer) -> None:
    raise AssertionError("no WebSocket should be opened")


@pytest.mark.parametrize(("status", "tries"), [(401, 1), (403, 1), (404, 1), (500, 3), (503, 3)])
async def test_an_http_refusal_is_a_connect_error_with_its_status(status: int, tries: int) -> None:
    requests: list[str] = []
    with (
        hostile_server(never_reached, process_request=refuse_with(status, requests)) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(ConnectError) as raised,
    ):
        await run_to_the_end(Outcome(), "secret-token", server.url, retry=RETRY)

    assert raised.value.status == status
    assert str(raised.value) == f"{server.url} refused the WebSocket: HTTP {status}"
    # 4xx is a refusal, never retried; 5xx may pass: two retries.
    assert len(requests) == tries
    assert "secret-token" not in str(raised.value)


async def test_a_forged_accept_header_is_a_connect_error_retried_as_a_transport_failure() -> None:
    requests: list[str] = []

    def forge(connection: ServerConnection, request: Request, response: Response) -> Response:
        requests.append(request.path)
        del response.headers["Sec-WebSocket-Accept"]
        response.headers["Sec-WebSocket-Accept"] = base64.b64encode(b"not the key's hash").decode()
        return response

    async def until_the_client_leaves(peer: Peer) -> None:
        await peer.until_closed()  # the server thinks the handshake went well

    with (
        hostile_server(until_the_client_leaves, process_response=forge) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(ConnectError) as raised,
    ):
        await run_to_the_end(Outcome(), "token", server.url, retry=RETRY)

    assert raised.value.status is None
    assert "Sec-WebSocket-Accept" in str(raised.value)
    assert len(requests) == 3


# The connection closes mid-call, before the result.

CLOSES = pytest.mark.parametrize(("close_code", "reason"), [(1011, "internal error"), (None, "")])


async def close_or_drop(peer: Peer, close_code: int | None, reason: str) -> None:
    if close_code is None:
        peer.drop()
    else:
        await peer.close(close_code, reason)


@CLOSES
async def test_a_close_mid_call_is_a_disconnection_with_its_code(
    close_code: int | None, reason: str
) -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.say("Hello")
        await close_or_drop(peer, close_code, reason)

    outcome = Outcome()
    with (
        hostile_server(script) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(DisconnectedError) as raised,
    ):
        await run_to_the_end(outcome, "token", server.url, timeouts=QUICK)

    assert raised.value.code == close_code
    assert raised.value.reason == reason
    assert [e.text for e in outcome.events if isinstance(e, TextReceived)] == ["Hello"]
    assert outcome.call.state is ConnectionState.CLOSED


@asyncio_only
@CLOSES
async def test_a_close_mid_voice_call_keeps_the_recording(
    tmp_path: Path, close_code: int | None, reason: str
) -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        voice = await peer.start_voice()
        await voice.speak("Hello")
        await asyncio.sleep(0.5)  # the last packets reach the client
        await close_or_drop(peer, close_code, reason)

    recording = tmp_path / "agent.wav"
    with (
        hostile_server(script) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(DisconnectedError) as raised,
    ):
        await run_to_the_end(Outcome(), "token", server.url, **voice(recording))

    assert raised.value.code == close_code
    assert assert_valid_wav(recording) > 0
    samples, rate, _ = read_wav(recording)
    found = dominant_frequencies(samples[0], rate)
    assert sum(abs(f - AGENT_TONES_HZ[0]) < 15 for f in found) >= 2, found


# A tool request id, twice.


async def test_a_repeated_tool_request_id_is_a_violation_and_runs_once() -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.request_tool("t-1", "lookup", {"query": "first"})
        await peer.request_tool("t-1", "lookup", {"query": "again"})
        await peer.expect(WebsocketToolResponse)
        await peer.say("done")
        await peer.expect(Terminate)
        await peer.end()
        await peer.until_closed()

    runs: list[str] = []

    async def lookup(query: str) -> str:
        runs.append(query)
        return f"found {query}"

    events: list[Event] = []
    with hostile_server(script) as server, anyio.fail_after(LIMIT):
        async with connect("token", server=server.url, tools={"lookup": lookup}) as call:
            async for event in call:
                events.append(event)
                if isinstance(event, TextReceived) and event.text == "done":
                    break
            result = await call.terminate()
        (peer,) = server.peers

    assert runs == ["first"]
    (requested,) = [e for e in events if isinstance(e, ToolRequested)]
    assert requested.args == {"query": "first"}
    (violation,) = [e for e in events if isinstance(e, ProtocolViolation)]
    assert violation.reason == "a second tool request with id 't-1'"
    responses = [m for m in peer.received if isinstance(m, WebsocketToolResponse)]
    assert [(r.content.id, r.content.result) for r in responses] == [("t-1", "found first")]
    assert result is not None
    assert result.status == "Completed"


# A flood of tool requests.


async def test_a_flood_of_tool_requests_is_answered_without_piling_up() -> None:
    requests, bound = 1000, DEFAULT_MAX_PENDING_TOOLS

    async def script(peer: Peer) -> None:
        await peer.accept()
        for number in range(requests):
            await peer.request_tool(f"t-{number}", "lookup", {"n": number})
        # Those over the bound are answered at once; the handlers hold the rest.
        for _ in range(requests - bound):
            await peer.expect(WebsocketToolResponse)
        await peer.say("release")
        for _ in range(bound):
            await peer.expect(WebsocketToolResponse)
        await peer.say("all answered")
        await peer.expect(Terminate)
        await peer.end()
        await peer.until_closed()

    release = anyio.Event()
    ran: list[int] = []

    async def lookup(n: int) -> int:
        ran.append(n)
        await release.wait()
        return n

    with hostile_server(script) as server, anyio.fail_after(LIMIT):
        async with connect("token", server=server.url, tools={"lookup": lookup}) as call:
            async for event in call:
                if isinstance(event, TextReceived) and event.text == "release":
                    release.set()
                elif isinstance(event, TextReceived):
                    break
            result = await call.terminate()
        (peer,) = server.peers

    responses = [m for m in peer.received if isinstance(m, WebsocketToolResponse)]
    assert sorted(r.content.id for r in responses) == sorted(f"t-{n}" for n in range(requests))
    assert sorted(ran) == list(range(bound))
    results = {r.content.id: r.content.result for r in responses}
    assert all(results[f"t-{n}"] == n for n in range(bound))
    assert all(results[f"t-{n}"] == {"error": BUSY} for n in range(bound, requests))
    assert result is not None
    assert result.status == "Completed"


# A tool request too deep to decode.


@pytest.mark.parametrize("depth", [990, 100_000])
async def test_a_tool_request_too_deep_to_decode_is_answered_with_an_error(depth: int) -> None:
    args = '{"v": ' + "[" * depth + "]" * depth + "}"
    frame = (
        '{"type": "websocketToolRequest", "timestamp": "2025-01-20T10:00:00.000Z", '
        '"channelId": null, "content": {"id": "deep-1", "toolName": "lookup", "args": '
        + args
        + "}}"
    )

    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.send(frame)
        # The agent waits for every request's response: this one must come.
        response = await peer.expect(WebsocketToolResponse)
        await peer.say(f"answered {response.content.id}")
        await peer.expect(Terminate)
        await peer.end()
        await peer.until_closed()

    runs: list[object] = []

    async def lookup(**args: object) -> str:
        runs.append(args)
        return "never"

    events: list[Event] = []
    with hostile_server(script) as server, anyio.fail_after(LIMIT):
        async with connect("token", server=server.url, tools={"lookup": lookup}) as call:
            async for event in call:
                events.append(event)
                if isinstance(event, TextReceived):
                    break
            result = await call.terminate()
        (peer,) = server.peers

    assert runs == []
    assert not any(isinstance(e, ToolRequested) for e in events)
    (violation,) = [e for e in events if isinstance(e, ProtocolViolation)]
    assert violation.reason == (
        "arrays and objects nest deeper than 128 levels; answered with an error result"
    )
    [response] = [m for m in peer.received if isinstance(m, WebsocketToolResponse)]
    assert response.content.id == "deep-1"
    assert response.content.result == {
        "error": "invalid request: arrays and objects nest deeper than 128 levels"
    }
    assert [e.text for e in events if isinstance(e, TextReceived)] == ["answered deep-1"]
    assert result is not None
    assert result.status == "Completed"


# A voice call the agent ends before its audio connected.


@asyncio_only
async def test_a_voice_call_the_agent_ends_before_any_offer_is_a_media_error(
    tmp_path: Path,
) -> None:
    async def script(peer: Peer) -> None:
        await peer.accept()
        await peer.say("Goodbye")
        await peer.end()
        await peer.until_closed()

    recording = tmp_path / "agent.wav"
    outcome = Outcome()
    with (
        hostile_server(script) as server,
        anyio.fail_after(LIMIT),
        pytest.raises(MediaNotConnected) as raised,
    ):
        await run_to_the_end(outcome, "token", server.url, **voice(recording))

    assert str(raised.value) == (
        "the call ended before the service offered its audio (no sdpInvite came)"
    )
    assert raised.value.seconds is None
    assert isinstance(outcome.events[-1], ConversationEnded)
    # The result that came is kept.
    assert outcome.call.result is not None
    assert outcome.call.result.status == "Completed"
    assert assert_valid_wav(recording) == 0
