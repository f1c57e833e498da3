"""Replay the golden transcripts against both real connections.

Every ``transcripts/*.jsonl`` conversation is played twice:

- by a ``ClientConnection``: each ``out`` frame is produced by the matching
  client command, with arguments taken from the frame, and must decode equal to
  the transcript's frame (but for the timestamp, which ``now`` stamps); each
  ``in`` frame is fed to ``receive_frame``; ``close`` calls ``receive_close``;
- by a ``ServerConnection``, the mirror: ``in`` frames are produced by server
  commands and ``out`` frames are received.

After each line the events produced must be exactly those the line implies,
and at the end the state, the error and the result must be the transcript's
expected outcome (``OUTCOMES``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import pytest
from attrs import frozen
from blackbox_protocol import (
    AnswerReceived,
    AuthenticationError,
    BlackBoxError,
    CallType,
    ChatMessageReceived,
    ClientBugError,
    ClientConnection,
    ConfigurationError,
    Connected,
    ConnectionClosed,
    ConnectionState,
    ConversationEnded,
    ConversationFailed,
    DisconnectedError,
    EventReceived,
    InitializeReceived,
    Message,
    OfferReceived,
    ServerConnection,
    TerminateReceived,
    TextReceived,
    ToolLogReceived,
    ToolRequested,
    ToolResponseReceived,
    decode,
    format_timestamp,
)
from blackbox_protocol import Event as AppEvent
from blackbox_protocol.messages import (
    ConversationResult,
    Error,
    Event,
    IncomingChatMessage,
    Initialize,
    SdpAnswer,
    SdpInvite,
    Terminate,
    Text,
    ToolCall,
    ToolCallResult,
    WebsocketToolRequest,
    WebsocketToolResponse,
)

from tests.blackbox_protocol._turns import without_turns

DIRECTORY: Final = Path(__file__).parent / "transcripts"
FILES: Final = sorted(DIRECTORY.glob("*.jsonl"))

CLIENT_TYPES: Final = frozenset(
    {"initialize", "incomingChatMessage", "sdpAnswer", "websocketToolResponse", "terminate"}
)
SERVER_TYPES: Final = frozenset(
    {
        "event",
        "text",
        "sdpInvite",
        "websocketToolRequest",
        "toolCall",
        "toolCallResult",
        "conversationResult",
        "error",
    }
)

#: PROTOCOL.md section 6, written out here independently of ``errors.SERVICE_ERRORS``.
SERVICE_ERROR_CLASSES: Final[dict[str, type[BlackBoxError]]] = {
    "Missing token": AuthenticationError,
    "Invalid token": AuthenticationError,
    "Web integration is not enabled": ConfigurationError,
    "Origin not allowed": ConfigurationError,
    "Init message not received": ClientBugError,
    "Multiple init messages received": ClientBugError,
    "Too large message": ClientBugError,
}


@frozen
class Outcome:
    """How a transcript ends, for both connections."""

    state: ConnectionState
    error: type[BlackBoxError] | None = None
    status: str | None = None
    conversation_id: str | None = None


_CLOSED = ConnectionState.CLOSED
_ENDED = ConnectionState.ENDED

#: The expected outcome of every transcript in the directory.
OUTCOMES: Final[dict[str, Outcome]] = {
    # Copied from the shared protocol notes.
    "chat-documented.jsonl": Outcome(_ENDED, status="Completed", conversation_id="call-abc123"),
    "chat-live-tool.jsonl": Outcome(_ENDED, status="Completed", conversation_id="5f0c2b1e"),
    "error-token.jsonl": Outcome(_CLOSED, AuthenticationError),
    "voice-live.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="a81d"),
    # Documented shapes.
    "documented-chat.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="rec-7d2e"),
    "documented-voice.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="rec-voice-01"),
    "documented-tool.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="rec-tool-7"),
    "documented-error-token.jsonl": Outcome(_CLOSED, AuthenticationError),
    "documented-error-origin.jsonl": Outcome(_CLOSED, ConfigurationError),
    # Live shapes.
    "live-chat.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="9c4e7a10"),
    "live-voice.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="a81d77"),
    "live-tool.jsonl": Outcome(_CLOSED, status="Completed", conversation_id="5f0c2b1e"),
    "live-error-token.jsonl": Outcome(_CLOSED, AuthenticationError),
    "live-error-origin.jsonl": Outcome(_CLOSED, ConfigurationError),
    "live-voice-dropped.jsonl": Outcome(_CLOSED, DisconnectedError, conversation_id="d20p"),
}


@frozen
class Line:
    """One line of a transcript, with the clock at that point."""

    direction: Literal["out", "in", "close"]
    now: float
    frame: dict[str, Any] | None = None
    code: int | None = None

    @property
    def text(self) -> str:
        assert self.frame is not None
        return json.dumps(self.frame, ensure_ascii=False)

    @property
    def message(self) -> Message:
        return decode(self.text)


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def load(path: Path) -> list[Line]:
    """The transcript's lines; the clock is each frame's timestamp, never going back."""
    lines: list[Line] = []
    now = 0.0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry = json.loads(raw)
        direction = entry["dir"]
        if direction == "close":
            assert set(entry) == {"dir", "code"}, f"{path.name}:{number}"
            lines.append(Line("close", now, code=entry["code"]))
            continue
        assert direction in ("out", "in"), f"{path.name}:{number}"
        assert set(entry) == {"dir", "frame"}, f"{path.name}:{number}"
        frame = entry["frame"]
        now = max(now, parse_time(frame["timestamp"]))
        lines.append(Line(direction, now, frame=frame))
    return lines


def messages(lines: Sequence[Line]) -> list[Message]:
    return [line.message for line in lines if line.frame is not None]


def state_of(connection: ClientConnection | ServerConnection) -> ConnectionState:
    # A function, so that mypy does not keep a narrowed state across commands.
    return connection.state


def ids(path: Path) -> str:
    return path.stem


def without_timestamp(message: Message) -> Message:
    return attrs.evolve(message, timestamp=None)


def normalized(events: Sequence[AppEvent]) -> list[object]:
    """Events made comparable: exceptions compare by class and text, not identity."""
    out: list[object] = []
    for event in without_turns(events):
        if isinstance(event, ConversationFailed):
            out.append(("ConversationFailed", type(event.error), str(event.error)))
        else:
            out.append(event)
    return out


def service_failure(message: str) -> object:
    cls = SERVICE_ERROR_CLASSES.get(message, ClientBugError)
    return ("ConversationFailed", cls, message)


def close_events(line: Line, conversation_over: bool) -> list[object]:
    """A close fails a conversation that was not over (PROTOCOL.md section 5), then closes."""
    events: list[object] = []
    if not conversation_over:
        events.append(("ConversationFailed", DisconnectedError, str(DisconnectedError(line.code))))
    events.append(ConnectionClosed(line.code, ""))
    return events


def ends_conversation(message: Message) -> bool:
    return isinstance(message, Terminate | ConversationResult | Error)


# The client end.


def client_command(connection: ClientConnection, message: Message, now: float) -> None:
    """Produce ``message`` with the client command that sends it."""
    match message:
        case Initialize(request=request):
            connection.initialize(
                request.call_type,
                additional_data=request.additional_data,
                endpoint=request.endpoint,
                now=now,
            )
        case IncomingChatMessage(content=text):
            connection.send_text(text, now=now)
        case SdpAnswer(data=data):
            connection.answer(data.sdp_answer, now=now)
        case WebsocketToolResponse(content=content):
            connection.reply_to_tool(content.id, content.result, now=now)
        case Terminate():
            connection.terminate(now=now)
        case _:
            pytest.fail(f"no client command sends {message.type}")


def client_events(message: Message) -> list[object]:
    """The events a client emits on receiving ``message`` (an allowed server message)."""
    match message:
        case Event(name="connection", data=data):
            assert data is not None
            return [Connected(data.record_id, data.job_id)]
        case Event(name=name, data=data):
            return [EventReceived(name, data)]
        case Text(content=content):
            return [TextReceived(content.source, content.text, content.type == "potential")]
        case SdpInvite(data=data):
            return [OfferReceived(data.sdp)]
        case WebsocketToolRequest(content=content):
            return [ToolRequested(content.id, content.tool_name, content.args)]
        case ToolCall() | ToolCallResult():
            return [ToolLogReceived(message)]
        case ConversationResult(result=result):
            return [ConversationEnded(result)]
        case Error(data=data):
            return [service_failure(data.message)]
    pytest.fail(f"a client does not receive {message.type}")


@frozen
class ClientRun:
    connection: ClientConnection
    events: list[AppEvent]


def replay_client(lines: Sequence[Line]) -> ClientRun:
    connection = ClientConnection()
    every: list[AppEvent] = []
    over = False
    for line in lines:
        if line.direction == "out":
            sent = line.message
            client_command(connection, sent, line.now)
            frames = connection.frames_to_send()
            assert len(frames) == 1, frames
            produced = decode(frames[0])
            assert without_timestamp(produced) == without_timestamp(sent)
            assert produced.timestamp == format_timestamp(line.now)
            assert json.loads(frames[0])["channelId"] is None
            expected: list[object] = []
        elif line.direction == "in":
            received = line.message
            connection.receive_frame(line.text, now=line.now)
            assert connection.frames_to_send() == []
            expected = client_events(received)
        else:
            connection.receive_close(line.code)
            expected = close_events(line, over)
        if line.frame is not None:
            over = over or ends_conversation(line.message)
        events = connection.events_received()
        assert normalized(events) == expected, line
        every.extend(events)
    return ClientRun(connection, every)


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_client_replays_transcript(path: Path) -> None:
    lines = load(path)
    run = replay_client(lines)
    connection, outcome = run.connection, OUTCOMES[path.name]
    assert connection.state is outcome.state
    assert type(connection.error) is (outcome.error or type(None))
    assert connection.conversation_id == outcome.conversation_id
    assert (connection.result.status if connection.result else None) == outcome.status
    assert connection.pending_tool_ids == frozenset()
    assert connection.frames_to_send() == []

    # The key fields, read from the events: texts, tool ids, result, error.
    frames = [line.frame for line in lines if line.direction == "in" and line.frame]
    texts = [event.text for event in run.events if isinstance(event, TextReceived)]
    assert texts == [f["content"]["text"] for f in frames if f["type"] == "text"]
    tools = [event.id for event in run.events if isinstance(event, ToolRequested)]
    assert tools == [f["content"]["id"] for f in frames if f["type"] == "websocketToolRequest"]
    ended = [event.result.status for event in run.events if isinstance(event, ConversationEnded)]
    assert ended == ([] if outcome.status is None else [outcome.status])
    failures = [event.error for event in run.events if isinstance(event, ConversationFailed)]
    assert [type(error) for error in failures] == ([] if outcome.error is None else [outcome.error])
    if lines[-1].direction == "close":
        assert run.events[-1] == ConnectionClosed(lines[-1].code, "")


# The server end.


def server_command(connection: ServerConnection, message: Message, now: float) -> None:
    """Produce ``message`` with the server command that sends it."""
    match message:
        case Event(name="connection", data=data):
            assert data is not None
            connection.accept(job_id=data.job_id, record_id=data.record_id, now=now)
        case Event(name=name, data=data):
            assert data is not None, "send_event always writes data"
            connection.send_event(name, data.extra, now=now)
        case Text(content=content):
            partial = content.type == "potential"
            connection.send_text(content.text, source=content.source, partial=partial, now=now)
        case SdpInvite(data=data):
            key: Literal["invite", "sdpOffer"] = "invite" if data.invite is not None else "sdpOffer"
            connection.offer(data.sdp, key=key, now=now)
        case WebsocketToolRequest(content=content):
            connection.request_tool(content.id, content.tool_name, content.args, now=now)
        case ConversationResult(result=result):
            connection.end(result, now=now)
        case Error(data=data):
            connection.send_error(data.message, now=now)
        case _:
            pytest.fail(f"no server command sends {message.type}")


def server_events(message: Message) -> list[object]:
    """The events a server emits on receiving ``message`` (an allowed client message)."""
    match message:
        case Initialize(request=request):
            call_type = CallType(request.call_type)
            return [InitializeReceived(call_type, request.additional_data, request.endpoint)]
        case IncomingChatMessage(content=text):
            return [ChatMessageReceived(text)]
        case SdpAnswer(data=data):
            return [AnswerReceived(data.sdp_answer)]
        case WebsocketToolResponse(content=content):
            return [ToolResponseReceived(content.id, content.result)]
        case Terminate():
            return [TerminateReceived()]
    pytest.fail(f"a server does not receive {message.type}")


def replay_server(lines: Sequence[Line]) -> ServerConnection:
    connection = ServerConnection(now=lines[0].now)
    over = False
    for line in lines:
        if line.direction == "in":
            sent = line.message
            if isinstance(sent, ToolCall | ToolCallResult):
                # ``toolCall`` and ``toolCallResult`` are the service's informational
                # tool logs: the ServerConnection has no command for them (their
                # shape is undocumented and the emulator does not send them), so
                # the server side skips them; the client side still receives them.
                continue
            server_command(connection, sent, line.now)
            frames = connection.frames_to_send()
            assert len(frames) == 1, frames
            produced = decode(frames[0])
            assert without_timestamp(produced) == without_timestamp(sent)
            assert produced.timestamp == format_timestamp(line.now)
            expected = [service_failure(sent.data.message)] if isinstance(sent, Error) else []
        elif line.direction == "out":
            connection.receive_frame(line.text, now=line.now)
            assert connection.frames_to_send() == []
            expected = server_events(line.message)
        else:
            connection.receive_close(line.code)
            expected = close_events(line, over)
        if line.frame is not None:
            over = over or ends_conversation(line.message)
        assert normalized(connection.events_received()) == expected, line
    return connection


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_server_replays_transcript(path: Path) -> None:
    lines = load(path)
    connection = replay_server(lines)
    outcome = OUTCOMES[path.name]
    assert connection.state is outcome.state
    assert type(connection.error) is (outcome.error or type(None))
    requests = [m.request for m in messages(lines) if isinstance(m, Initialize)]
    expected_call_type = CallType(requests[0].call_type) if requests else None
    assert connection.call_type == expected_call_type


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_both_ends_agree_on_the_outcome(path: Path) -> None:
    lines = load(path)
    client = replay_client(lines).connection
    server = replay_server(lines)
    assert client.state is server.state
    assert type(client.error) is type(server.error)
    assert str(client.error) == str(server.error)


# The transcripts themselves.


def test_every_transcript_has_an_outcome() -> None:
    assert FILES, f"no transcripts in {DIRECTORY}"
    assert {path.name for path in FILES} == set(OUTCOMES)


@pytest.mark.parametrize("path", FILES, ids=ids)
def test_transcript_is_well_formed(path: Path) -> None:
    lines = load(path)
    assert lines
    for line in lines:
        if line.direction == "close":
            assert isinstance(line.code, int)
            assert line is lines[-1], "nothing follows the close"
            continue
        assert line.frame is not None
        types = CLIENT_TYPES if line.direction == "out" else SERVER_TYPES
        assert line.frame["type"] in types, line
        assert isinstance(line.frame["timestamp"], str)
        assert type(line.message) is not Message
        if line.direction == "out":
            # The SDK always sends ``"channelId": null``.
            assert "channelId" in line.frame
            assert line.frame["channelId"] is None


def shape(lines: Sequence[Line]) -> str:
    """``documented``, ``live`` or ``mixed``, from the server frames' shape."""
    frames = [line.frame for line in lines if line.direction == "in" and line.frame]
    keys = {
        key
        for frame in frames
        if isinstance(frame.get("data"), dict)
        for key in frame["data"]
        if key in {"recordId", "jobId", "sdpOffer", "invite"}
    }
    if all("channelId" not in frame for frame in frames) and not keys & {"jobId", "invite"}:
        return "documented"
    channel_null = all("channelId" in frame and frame["channelId"] is None for frame in frames)
    if channel_null and not keys & {"recordId", "sdpOffer"}:
        return "live"
    return "mixed"


def kinds(lines: Sequence[Line]) -> Iterator[str]:
    decoded = messages(lines)
    types = [m.type for m in decoded]
    chat = any(isinstance(m, Initialize) and m.request.call_type == CallType.CHAT for m in decoded)
    if chat and "incomingChatMessage" in types:
        yield "chat"
    if "sdpInvite" in types and "sdpAnswer" in types:
        yield "voice"
    if "websocketToolRequest" in types and "websocketToolResponse" in types:
        yield "tool"
    for message in decoded:
        if isinstance(message, Error):
            yield f"error: {message.data.message}"


def test_transcripts_cover_both_shapes() -> None:
    covered = {(shape(lines), kind) for lines in map(load, FILES) for kind in kinds(lines)}
    required = {
        (each_shape, kind)
        for each_shape in ("documented", "live")
        for kind in ("chat", "voice", "tool", "error: Invalid token", "error: Origin not allowed")
    }
    assert required <= covered, sorted(required - covered)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("documented-error-token.jsonl", AuthenticationError),
        ("live-error-token.jsonl", AuthenticationError),
        ("documented-error-origin.jsonl", ConfigurationError),
        ("live-error-origin.jsonl", ConfigurationError),
    ],
)
def test_error_transcripts_fail_with_the_typed_error(name: str, error: type[BlackBoxError]) -> None:
    lines = load(DIRECTORY / name)
    before_close = [line for line in lines if line.direction != "close"]
    client = replay_client(before_close).connection
    assert client.state is ConnectionState.FAILED
    assert isinstance(client.error, error)
    message = next(line.message for line in lines if line.frame and line.frame["type"] == "error")
    assert isinstance(message, Error)
    assert client.error.args == (message.data.message,)
    client.receive_close(lines[-1].code)
    # A close after the error frame is the expected end, not a disconnection.
    assert isinstance(client.error, error)
    assert state_of(client) is ConnectionState.CLOSED
