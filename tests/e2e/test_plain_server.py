"""The independent test server (``tests.e2e._plain_server``), driven by the SDK and by hand.

The SDK's driver (``connect()``, on asyncio and trio) walks its scripted chat:
greeting, echo and chunked reply, a tool round trip, terminate. A raw
websockets client (sync, no SDK) checks what the driver cannot show: the
frames' envelope, and the closes the server gives to what the live service
refuses. The server must stay independent of the SDK: a child process proves
that importing it loads no ``blackbox_*`` module.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from blackbox_protocol import (
    AuthenticationError,
    Call,
    Connected,
    ConnectionState,
    ConversationEnded,
    Event,
    EventReceived,
    ReplyEnded,
    ReplyStarted,
    TextReceived,
    ToolRequested,
    connect,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as raw_connect

from tests.e2e._calls import assistant_said, until
from tests.e2e._plain_server import GREETING, PATH, PlainServer, reply_to

#: The hang guard of every test, in seconds.
LIMIT = 15
#: ``2026-06-10T09:00:00.412Z``: UTC, milliseconds, ``Z``.
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ROOT = Path(__file__).resolve().parents[2]


def said(events: list[Event]) -> list[tuple[str, str]]:
    """(source, text) of each text event."""
    return [(e.source, e.text) for e in events if isinstance(e, TextReceived)]


async def say(call: Call, text: str, last_chunk: str) -> list[Event]:
    """Send ``text``; the events up to the reply's ``last_chunk``."""
    await call.send_text(text)
    return await until(call, assistant_said(last_chunk))


def sent_by_client(transcript: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        line["frame"]
        for line in transcript
        if line["dir"] == "out" and line["frame"]["type"] == kind
    ]


# Through the SDK's driver.


@pytest.mark.anyio
async def test_a_chat_greets_echoes_replies_in_chunks_and_terminates(
    plain_server: PlainServer,
) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(plain_server.token, server=plain_server.url) as call:
            opening = await until(call, assistant_said(GREETING[-1]))
            turn = await say(call, "hi there", ".")
            result = await call.terminate()
            rest = [event async for event in call]
        (transcript,) = await anyio.to_thread.run_sync(plain_server.finished)

    connected, opened, *greeting = opening
    assert connected == Connected(record_id=None, job_id="plain-job-1")
    assert isinstance(opened, EventReceived)
    assert opened.name == "opened"
    assert greeting[0] == ReplyStarted()
    assert greeting[1:] == [TextReceived("assistant", chunk, partial=False) for chunk in GREETING]
    assert call.conversation_id == "plain-job-1"
    assert said(turn) == [
        ("user", "hi there"),
        ("assistant", "You said: "),
        ("assistant", "hi there"),
        ("assistant", "."),
    ]
    assert result is not None
    assert (result.status, result.error_message) == ("Completed", None)
    # Terminated at once, the reply had no pause to end it: the result did.
    assert [type(event) for event in rest] == [ReplyEnded, ConversationEnded]
    assert call.state is ConnectionState.CLOSED
    assert transcript[-1] == {"dir": "close", "code": 1000}
    assert [m["content"] for m in sent_by_client(transcript, "incomingChatMessage")] == ["hi there"]


@pytest.mark.anyio
async def test_an_empty_message_gets_a_reply_without_an_empty_chunk(
    plain_server: PlainServer,
) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(plain_server.token, server=plain_server.url) as call:
            await until(call, assistant_said(GREETING[-1]))
            turn = await say(call, "", ".")

    assert reply_to("") == ("You said: ", ".")
    assert said(turn) == [("user", ""), ("assistant", "You said: "), ("assistant", ".")]


def weather_in_paris(city: str) -> dict[str, Any]:
    return {"temperature": 21 if city == "Paris" else 0}


def broken_weather(city: str) -> dict[str, Any]:
    raise ValueError(f"no weather for {city}")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("handler", "reply", "result"),
    [
        (weather_in_paris, ("It is ", "21", " degrees."), {"temperature": 21}),
        (
            broken_weather,
            ("The weather tool failed.",),
            {"error": "ValueError: no weather for Paris"},
        ),
    ],
    ids=["answers", "fails"],
)
async def test_a_weather_question_goes_through_the_client_tool(
    plain_server: PlainServer,
    handler: Callable[[str], dict[str, Any]],
    reply: tuple[str, ...],
    result: dict[str, Any],
) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(
            plain_server.token, server=plain_server.url, tools={"get_weather": handler}
        ) as call:
            await until(call, assistant_said(GREETING[-1]))
            turn = await say(call, "what is the weather like?", reply[-1])
            await call.terminate()
        (transcript,) = await anyio.to_thread.run_sync(plain_server.finished)

    (requested,) = [e for e in turn if isinstance(e, ToolRequested)]
    assert (requested.id, requested.name, dict(requested.args)) == (
        "tool-1",
        "get_weather",
        {"city": "Paris"},
    )
    assert said(turn) == [("user", "what is the weather like?")] + [
        ("assistant", chunk) for chunk in reply
    ]
    (response,) = sent_by_client(transcript, "websocketToolResponse")
    assert response["channelId"] is None
    assert response["content"] == {"id": "tool-1", "result": result}


@pytest.mark.anyio
async def test_a_wrong_token_is_an_authentication_error(plain_server: PlainServer) -> None:
    with anyio.fail_after(LIMIT), pytest.raises(AuthenticationError, match="Invalid token"):
        async with connect(plain_server.token + "x", server=plain_server.url):
            pytest.fail("refused before the block")

    (transcript,) = await anyio.to_thread.run_sync(plain_server.finished)
    # Refused on opening: the client's initialize is never read.
    assert transcript[0]["frame"]["type"] == "error"
    assert transcript[0]["frame"]["data"] == {"message": "Invalid token"}
    assert transcript[-1] == {"dir": "close", "code": 1008}


# By hand, with websockets' sync client.


@contextmanager
def raw_client(server: PlainServer, query: str | None = None) -> Iterator[ClientConnection]:
    query = f"token={server.token}" if query is None else query
    with raw_connect(f"{server.url}{PATH}?{query}", open_timeout=5, close_timeout=5) as websocket:
        yield websocket


def send(websocket: ClientConnection, kind: str, **payload: Any) -> None:
    frame = {"type": kind, "timestamp": "2026-06-10T09:00:00.000Z", "channelId": None, **payload}
    websocket.send(json.dumps(frame))


def receive(websocket: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(websocket.recv(timeout=5))
    return frame


def start_chat(websocket: ClientConnection) -> list[dict[str, Any]]:
    """Initialize a chat; the frames up to the greeting's end."""
    send(websocket, "initialize", request={"callType": "chat", "additionalData": {}})
    return [receive(websocket) for _ in range(2 + len(GREETING))]


def close_code(websocket: ClientConnection) -> int | None:
    """Read until the server closes; its close code."""
    try:
        while True:
            websocket.recv(timeout=5)
    except ConnectionClosed as closed:
        received = closed.rcvd
        return None if received is None else received.code


def test_every_frame_carries_a_utc_timestamp_and_a_null_channel(plain_server: PlainServer) -> None:
    with raw_client(plain_server) as websocket:
        frames = start_chat(websocket)
        send(websocket, "incomingChatMessage", content="hello")
        frames += [receive(websocket) for _ in range(1 + len(reply_to("hello")))]
        send(websocket, "terminate")
        frames.append(receive(websocket))

    assert [(f["type"], f.get("name")) for f in frames[:2]] == [
        ("event", "connection"),
        ("event", "opened"),
    ]
    assert frames[0]["data"] == {"jobId": "plain-job-1"}
    assert frames[-1]["result"] == {"status": "Completed", "errorMessage": None}
    for frame in frames:
        assert TIMESTAMP.fullmatch(frame["timestamp"]), frame
        assert "channelId" in frame
        assert frame["channelId"] is None


@pytest.mark.parametrize("content", [{"a": 1}, 42, None, ["hi"]], ids=repr)
def test_chat_content_that_is_not_a_string_is_closed_with_1007(
    plain_server: PlainServer, content: Any
) -> None:
    with raw_client(plain_server) as websocket:
        start_chat(websocket)
        send(websocket, "incomingChatMessage", content=content)
        assert close_code(websocket) == 1007


def test_a_tool_response_without_channel_id_is_closed_with_1007(plain_server: PlainServer) -> None:
    with raw_client(plain_server) as websocket:
        start_chat(websocket)
        send(websocket, "incomingChatMessage", content="weather?")
        assert receive(websocket)["content"] == {"source": "user", "text": "weather?"}
        request = receive(websocket)
        assert request["type"] == "websocketToolRequest"
        websocket.send(
            json.dumps(
                {
                    "type": "websocketToolResponse",
                    "timestamp": "2026-06-10T09:00:00.000Z",
                    "content": {"id": request["content"]["id"], "result": {"temperature": 3}},
                }
            )
        )
        assert close_code(websocket) == 1007


@pytest.mark.parametrize(
    ("query", "message"), [("", "Missing token"), ("token=nope", "Invalid token")]
)
def test_a_missing_or_wrong_token_gets_the_error_then_the_close(
    plain_server: PlainServer, query: str, message: str
) -> None:
    with raw_client(plain_server, query) as websocket:
        assert receive(websocket)["data"] == {"message": message}
        assert close_code(websocket) == 1008


def test_a_second_initialize_is_refused(plain_server: PlainServer) -> None:
    with raw_client(plain_server) as websocket:
        start_chat(websocket)
        send(websocket, "initialize", request={"callType": "chat"})
        assert receive(websocket)["data"] == {"message": "Multiple init messages received"}
        assert close_code(websocket) == 1008


def test_another_path_is_not_found(plain_server: PlainServer) -> None:
    with (
        pytest.raises(InvalidStatus) as refused,
        raw_connect(f"{plain_server.url}/api/v1/ws/dev?token=x", open_timeout=5),
    ):
        pytest.fail("refused in the handshake")

    assert refused.value.response.status_code == 404


def test_the_server_imports_nothing_of_the_sdk() -> None:
    probe = (
        "import sys, tests.e2e._plain_server; "
        "print(sorted(m for m in sys.modules if m.startswith('blackbox')))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert shown.stdout.strip() == "[]"
