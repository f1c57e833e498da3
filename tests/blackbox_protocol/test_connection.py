"""Example-based tests of ``ClientConnection`` and ``ServerConnection``.

Each test drives real ends with real frames (the server's frames fed to the
client and the other way round) and checks events, frames, state, deadlines
and the typed errors.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from blackbox_protocol import (
    AnswerReceived,
    AuthenticationError,
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
    LocalProtocolError,
    OfferReceived,
    ProtocolTimeout,
    ProtocolViolation,
    RemoteProtocolError,
    ReplyEnded,
    ReplyStarted,
    ServerConnection,
    ServiceError,
    TerminateReceived,
    TextReceived,
    ToolLogReceived,
    ToolRequested,
    ToolResponseReceived,
    ToolTimedOut,
    Turn,
    UnknownMessage,
    UnknownMessageReceived,
    UserTurnEnded,
    encode,
)
from blackbox_protocol._state import Role
from blackbox_protocol.connection import _Connection
from blackbox_protocol.events import Event as AppEvent
from blackbox_protocol.messages import (
    ConversationResultData,
    Initialize,
    InitializeRequest,
    Terminate,
    ToolCall,
    ToolCallResult,
)

S = ConnectionState
NOW = 1_700_000_000.0
OFFER = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0 8 101\r\n"
STAMP = "2023-11-14T22:13:20.000Z"
TERMINATE_WAIT = "conversationResult after terminate"
ANSWER = "v=0\r\no=- 2 2 IN IP4 192.0.2.2\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n"


def wire(obj: dict[str, Any]) -> str:
    """A frame with the envelope filled in."""
    return json.dumps({"timestamp": "2025-01-20T10:00:00.000Z", "channelId": None, **obj})


def parsed(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in frames]


def only(events: list[AppEvent]) -> AppEvent:
    assert len(events) == 1, events
    return events[0]


def violation(end: ClientConnection | ServerConnection) -> ProtocolViolation:
    event = only(end.events_received())
    assert isinstance(event, ProtocolViolation)
    return event


class Pair:
    """A client and a server joined by an in-memory link; ``now`` is shared."""

    def __init__(self, **client_options: Any) -> None:
        self.now = NOW
        self.client = ClientConnection(**client_options)
        self.server = ServerConnection(now=self.now)

    def to_server(self) -> list[AppEvent]:
        """Deliver the client's frames; return the server's events."""
        for frame in self.client.frames_to_send():
            self.server.receive_frame(frame, now=self.now)
        return self.server.events_received()

    def to_client(self) -> list[AppEvent]:
        """Deliver the server's frames; return the client's events."""
        for frame in self.server.frames_to_send():
            self.client.receive_frame(frame, now=self.now)
        return self.client.events_received()

    def start(self, call_type: CallType = CallType.CHAT, **options: Any) -> None:
        self.client.initialize(call_type, now=self.now, **options)
        self.to_server()
        self.client.events_received()

    def connect(self, call_type: CallType = CallType.CHAT) -> None:
        """Up to ``event connection`` (ACTIVE in chat, AWAITING_OFFER in voice)."""
        self.start(call_type)
        self.server.accept(job_id="job-1", now=self.now)
        self.to_client()

    def voice_active(self) -> None:
        self.connect(CallType.WEB_CALL)
        self.server.offer(OFFER, now=self.now)
        self.to_client()
        self.client.answer(ANSWER, now=self.now)
        self.to_server()
        assert (self.client.state, self.server.state) == (S.ACTIVE, S.ACTIVE)

    def request_tool(self, tool_id: str = "t1", name: str = "lookup") -> None:
        self.server.request_tool(tool_id, name, {"city": "Paris"}, now=self.now)
        self.to_client()

    def states(self) -> tuple[ConnectionState, ConnectionState]:
        return self.client.state, self.server.state


# The session and its events.


def test_a_chat_runs_from_initialize_to_the_result() -> None:
    pair = Pair()
    assert pair.states() == (S.AWAITING_INITIALIZE, S.AWAITING_INITIALIZE)
    pair.client.initialize(CallType.CHAT, additional_data={"name": "Ada"}, now=NOW)
    assert pair.client.state is S.AWAITING_SESSION
    [frame] = parsed(pair.client.frames_to_send())
    assert frame == {
        "type": "initialize",
        "timestamp": STAMP,
        "channelId": None,
        "request": {"callType": "chat", "additionalData": {"name": "Ada"}},
    }
    pair.server.receive_frame(json.dumps(frame), now=NOW)
    assert pair.server.events_received() == [
        InitializeReceived(CallType.CHAT, {"name": "Ada"}, None)
    ]
    assert pair.server.call_type is CallType.CHAT
    assert pair.server.state is S.AWAITING_SESSION

    pair.server.accept(job_id="job-7", now=NOW)
    assert pair.to_client() == [Connected(None, "job-7")]
    assert pair.states() == (S.ACTIVE, S.ACTIVE)

    pair.client.send_text("Hello", now=NOW)
    assert pair.to_server() == [ChatMessageReceived("Hello")]
    pair.server.send_text("Hello", source="user", now=NOW)
    pair.server.send_text("Hi, how", partial=True, now=NOW)
    pair.server.send_text("Hi, how can I help?", now=NOW)
    user = Turn("user", "Hello", NOW, NOW, ("Hello",))
    assert pair.to_client() == [
        TextReceived("user", "Hello", False),
        UserTurnEnded("Hello", user),  # the agent's words end it
        ReplyStarted(),
        TextReceived("assistant", "Hi, how", True),
        TextReceived("assistant", "Hi, how can I help?", False),
    ]
    assert list(pair.client.transcript) == [user]  # a list: mypy would narrow the tuple

    pair.client.terminate(now=NOW)
    assert pair.to_server() == [TerminateReceived()]
    assert pair.states() == (S.TERMINATING, S.TERMINATING)
    assert pair.client.result is None
    pair.server.end(now=NOW)
    result = ConversationResultData(status="Completed")
    # The partial chunk is provisional: the reply is the final one.
    reply = Turn("assistant", "Hi, how can I help?", NOW, NOW, ("Hi, how can I help?",))
    assert pair.to_client() == [ReplyEnded(reply.text, reply), ConversationEnded(result)]
    assert pair.client.transcript == (user, reply)
    assert pair.states() == (S.ENDED, S.ENDED)
    assert pair.client.result == result
    assert pair.client.error is None


def test_a_voice_call_negotiates_media_before_it_runs() -> None:
    pair = Pair()
    pair.connect(CallType.WEB_CALL)
    assert pair.states() == (S.AWAITING_OFFER, S.AWAITING_OFFER)
    with pytest.raises(LocalProtocolError):
        pair.client.send_text("too early", now=NOW)
    pair.server.offer(OFFER, now=NOW)
    assert pair.to_client() == [OfferReceived(OFFER)]
    assert pair.states() == (S.ANSWERING, S.ANSWERING)
    pair.client.answer(ANSWER, now=NOW)
    [frame] = parsed(pair.client.frames_to_send())
    assert frame["data"] == {"sdpAnswer": ANSWER}
    assert frame["channelId"] is None
    pair.server.receive_frame(json.dumps(frame), now=NOW)
    assert pair.server.events_received() == [AnswerReceived(ANSWER)]
    assert pair.states() == (S.ACTIVE, S.ACTIVE)
    pair.client.send_text("chat during a call", now=NOW)
    assert pair.to_server() == [ChatMessageReceived("chat during a call")]


@pytest.mark.parametrize(("key", "field"), [("invite", "invite"), ("sdpOffer", "sdpOffer")])
def test_the_offer_is_read_under_either_key(key: Any, field: str) -> None:
    pair = Pair()
    pair.connect(CallType.WEB_CALL)
    pair.server.offer(OFFER, key=key, now=NOW)
    [frame] = pair.server.frames_to_send()
    assert json.loads(frame)["data"] == {field: OFFER}
    pair.client.receive_frame(frame, now=NOW)
    assert pair.client.events_received() == [OfferReceived(OFFER)]


def test_on_phone_follows_the_chat_lifecycle_and_carries_the_endpoint() -> None:
    pair = Pair()
    pair.client.initialize("onPhone", endpoint="+33123456789", now=NOW)
    assert only(pair.to_server()) == InitializeReceived(CallType.ON_PHONE, None, "+33123456789")
    assert pair.server.call_type is CallType.ON_PHONE
    pair.server.accept(record_id="rec-1", now=NOW)
    pair.to_client()
    assert pair.states() == (S.ACTIVE, S.ACTIVE)


@pytest.mark.parametrize(
    ("data", "record_id", "job_id", "conversation_id"),
    [
        ({"recordId": "rec-1"}, "rec-1", None, "rec-1"),
        ({"jobId": "job-1"}, None, "job-1", "job-1"),
        ({"recordId": "rec-1", "jobId": "job-1"}, "rec-1", "job-1", "job-1"),
        (None, None, None, None),
    ],
    ids=["record", "job", "both", "no-data"],
)
def test_connection_event_ids(
    data: dict[str, str] | None,
    record_id: str | None,
    job_id: str | None,
    conversation_id: str | None,
) -> None:
    client = ClientConnection()
    client.initialize(CallType.CHAT, now=NOW)
    assert client.conversation_id is None
    event: dict[str, Any] = {"type": "event", "name": "connection"}
    if data is not None:
        event["data"] = data
    client.receive_frame(wire(event), now=NOW)
    assert client.events_received() == [Connected(record_id, job_id)]
    assert client.conversation_id == conversation_id
    assert client.state is S.ACTIVE


def test_server_accept_writes_the_id_it_is_given() -> None:
    server = ServerConnection(now=NOW)
    server.receive_frame(
        encode(Initialize(request=InitializeRequest(call_type="chat")), now=NOW), now=NOW
    )
    server.accept(record_id="rec-1", now=NOW)
    [frame] = parsed(server.frames_to_send())
    assert (frame["type"], frame["name"], frame["data"]) == (
        "event",
        "connection",
        {"recordId": "rec-1"},
    )


def test_other_events_are_reported_with_their_data() -> None:
    pair = Pair()
    pair.start()
    pair.server.send_event("opened", {"channel": "web"}, now=NOW)
    pair.server.accept(now=NOW)
    pair.server.send_event("closed", now=NOW)
    events = pair.to_client()
    assert [type(event) for event in events] == [EventReceived, Connected, EventReceived]
    opened, _, closed = events
    assert isinstance(opened, EventReceived)
    assert opened.name == "opened"
    assert opened.data is not None
    assert opened.data.extra == {"channel": "web"}
    assert isinstance(closed, EventReceived)
    assert closed.name == "closed"
    assert pair.states() == (S.ACTIVE, S.ACTIVE)


def test_text_keeps_unknown_content_fields_and_reads_the_partial_marker() -> None:
    pair = Pair()
    pair.connect()
    content = {"source": "assistant", "text": "Hel", "type": "potential", "id": 3}
    pair.client.receive_frame(wire({"type": "text", "content": content}), now=NOW)
    content = {"source": "assistant", "text": "Hello", "type": "final"}
    pair.client.receive_frame(wire({"type": "text", "content": content}), now=NOW)
    assert pair.client.events_received() == [
        ReplyStarted(),
        TextReceived("assistant", "Hel", True),
        TextReceived("assistant", "Hello", False),
    ]


@pytest.mark.parametrize("message_class", [ToolCall, ToolCallResult])
def test_tool_logs_are_reported_whole(message_class: type[ToolCall | ToolCallResult]) -> None:
    pair = Pair()
    pair.connect()
    frame = wire({"type": message_class.TYPE, "name": "lookup", "detail": {"ms": 12}})
    pair.client.receive_frame(frame, now=NOW)
    event = only(pair.client.events_received())
    assert isinstance(event, ToolLogReceived)
    assert isinstance(event.message, message_class)
    assert event.message.extra == {"name": "lookup", "detail": {"ms": 12}}
    assert pair.client.state is S.ACTIVE


@pytest.mark.parametrize("role", list(Role))
def test_unknown_messages_are_reported_whole(role: Role) -> None:
    pair = Pair()
    pair.connect()
    end = pair.client if role is Role.CLIENT else pair.server
    end.receive_frame(wire({"type": "somethingNew", "payload": [1, 2]}), now=NOW)
    event = only(end.events_received())
    assert isinstance(event, UnknownMessageReceived)
    assert isinstance(event.message, UnknownMessage)
    assert event.message.raw["payload"] == [1, 2]
    assert event.message.type == "somethingNew"
    assert end.state is S.ACTIVE


def test_server_end_with_a_result_of_its_own() -> None:
    pair = Pair()
    pair.connect()
    result = ConversationResultData(status="Failed", error_message="agent crashed")
    pair.server.end(result, now=NOW)
    [frame] = pair.server.frames_to_send()
    assert json.loads(frame)["result"] == {"status": "Failed", "errorMessage": "agent crashed"}
    pair.client.receive_frame(frame, now=NOW)
    assert pair.client.events_received() == [ConversationEnded(result)]
    assert pair.client.result == result
    assert pair.server.events_received() == []


def test_the_default_result_is_completed() -> None:
    pair = Pair()
    pair.connect()
    pair.server.end(now=NOW)
    [frame] = pair.server.frames_to_send()
    assert json.loads(frame)["result"] == {"status": "Completed", "errorMessage": None}


def test_informative_messages_continue_after_the_result() -> None:
    pair = Pair()
    pair.connect()
    pair.server.end(now=NOW)
    pair.server.send_text("bye", now=NOW)
    pair.to_client()
    assert pair.states() == (S.ENDED, S.ENDED)
    with pytest.raises(LocalProtocolError):
        pair.client.send_text("too late", now=NOW)
    with pytest.raises(LocalProtocolError):
        pair.client.terminate(now=NOW)


# Tools.


def test_a_tool_request_is_answered_once() -> None:
    pair = Pair()
    pair.connect()
    pair.server.request_tool("t1", "lookup", {"city": "Paris"}, now=NOW)
    assert pair.to_client() == [ToolRequested("t1", "lookup", {"city": "Paris"})]
    assert pair.client.pending_tool_ids == {"t1"}
    pair.client.reply_to_tool("t1", {"temperature": 21}, now=NOW)
    assert pair.client.pending_tool_ids == frozenset()
    [frame] = parsed(pair.client.frames_to_send())
    assert frame["type"] == "websocketToolResponse"
    assert frame["channelId"] is None
    assert frame["content"] == {"id": "t1", "result": {"temperature": 21}}
    pair.server.receive_frame(json.dumps(frame), now=NOW)
    assert pair.server.events_received() == [ToolResponseReceived("t1", {"temperature": 21})]
    with pytest.raises(LocalProtocolError):
        pair.client.reply_to_tool("t1", "again", now=NOW)
    assert pair.client.frames_to_send() == []


def test_a_null_result_is_still_a_result() -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool()
    pair.client.reply_to_tool("t1", None, now=NOW)
    [frame] = parsed(pair.client.frames_to_send())
    assert frame["content"] == {"id": "t1", "result": None}


def test_fail_tool_sends_an_error_result() -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool()
    pair.client.fail_tool("t1", "no network", now=NOW)
    assert pair.to_server() == [ToolResponseReceived("t1", {"error": "no network"})]
    assert pair.client.pending_tool_ids == frozenset()


@pytest.mark.parametrize("result", [float("nan"), object(), {"x": {1, 2}}])
def test_a_result_that_is_not_json_is_refused_and_the_request_stays_pending(
    result: object,
) -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool()
    with pytest.raises(LocalProtocolError):
        pair.client.reply_to_tool("t1", result, now=NOW)
    assert pair.client.pending_tool_ids == {"t1"}
    assert pair.client.frames_to_send() == []
    assert pair.client.state is S.ACTIVE
    pair.client.reply_to_tool("t1", "fine", now=NOW)
    assert pair.to_server() == [ToolResponseReceived("t1", "fine")]


def test_reply_to_a_request_never_made_is_refused() -> None:
    pair = Pair()
    pair.connect()
    with pytest.raises(LocalProtocolError, match="'nope'"):
        pair.client.reply_to_tool("nope", 1, now=NOW)
    with pytest.raises(LocalProtocolError):
        pair.client.fail_tool("nope", "x", now=NOW)
    assert pair.client.frames_to_send() == []


def test_a_second_request_with_the_same_id_is_a_violation() -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool("t1")
    request = wire(
        {"type": "websocketToolRequest", "content": {"id": "t1", "toolName": "x", "args": {}}}
    )
    pair.client.receive_frame(request, now=NOW)
    assert "second tool request" in violation(pair.client).reason
    pair.client.reply_to_tool("t1", 1, now=NOW)
    # Even once answered, the id may not come back.
    pair.client.receive_frame(request, now=NOW)
    assert "second tool request" in violation(pair.client).reason
    assert pair.client.pending_tool_ids == frozenset()
    assert len(pair.client.frames_to_send()) == 1


def test_the_server_refuses_a_response_it_did_not_ask_for() -> None:
    pair = Pair()
    pair.connect()
    response = wire({"type": "websocketToolResponse", "content": {"id": "ghost", "result": 1}})
    pair.server.receive_frame(response, now=NOW)
    assert violation(pair.server).reason == "no tool request 'ghost' awaits a reply"
    assert pair.server.state is S.ACTIVE


def test_the_server_refuses_a_second_response() -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool()
    pair.client.reply_to_tool("t1", 1, now=NOW)
    [frame] = pair.client.frames_to_send()
    pair.server.receive_frame(frame, now=NOW)
    assert pair.server.events_received() == [ToolResponseReceived("t1", 1)]
    pair.server.receive_frame(frame, now=NOW)
    assert "no tool request 't1'" in violation(pair.server).reason


def test_request_tool_refuses_a_reused_id() -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool("t1")
    with pytest.raises(LocalProtocolError, match="used before"):
        pair.server.request_tool("t1", "other", {}, now=NOW)
    assert pair.server.frames_to_send() == []


def test_a_refused_tool_request_does_not_use_up_its_id() -> None:
    pair = Pair()
    pair.start()
    with pytest.raises(LocalProtocolError):
        pair.server.request_tool("t1", "lookup", {}, now=NOW)  # before the session
    pair.server.accept(now=NOW)
    pair.request_tool("t1")
    assert pair.client.pending_tool_ids == {"t1"}


def test_tools_may_cross_terminate() -> None:
    pair = Pair()
    pair.connect()
    pair.client.terminate(now=NOW)
    pair.to_server()
    pair.request_tool("t1")
    assert pair.client.state is S.TERMINATING
    pair.client.reply_to_tool("t1", "ok", now=NOW)
    assert pair.to_server() == [ToolResponseReceived("t1", "ok")]


def test_the_end_drops_pending_tool_requests() -> None:
    pair = Pair(tool_timeout=5.0)
    pair.connect()
    pair.request_tool("t1")
    pair.server.end(now=NOW)
    pair.to_client()
    assert pair.client.pending_tool_ids == frozenset()
    assert pair.client.next_deadline() is None
    with pytest.raises(LocalProtocolError):
        pair.client.reply_to_tool("t1", 1, now=NOW)


def test_a_failure_drops_pending_tool_requests() -> None:
    pair = Pair(tool_timeout=5.0)
    pair.connect()
    pair.request_tool("t1")
    pair.server.send_error("Invalid token", now=NOW)
    pair.to_client()
    assert pair.client.state is S.FAILED
    assert pair.client.pending_tool_ids == frozenset()
    assert pair.client.next_deadline() is None


def tool_request_text(content: str) -> str:
    """A ``websocketToolRequest`` frame with ``content`` written as given."""
    return (
        '{"type": "websocketToolRequest", "timestamp": "2025-01-20T10:00:00.000Z", '
        '"channelId": null, "content": ' + content + "}"
    )


def nested_args(depth: int) -> str:
    return '{"v": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (nested_args(990), "arrays and objects nest deeper than 128 levels"),
        (nested_args(100_000), "arrays and objects nest deeper than 128 levels"),
        (
            "[1, 2]",
            "invalid websocketToolRequest: expected an object, got an array @ $.content.args",
        ),
    ],
    ids=["990-deep", "100000-deep", "args-not-an-object"],
)
def test_an_invalid_tool_request_whose_id_reads_gets_an_error_result(
    args: str, reason: str
) -> None:
    # The server waits for every response: an unanswered request stalls the agent.
    pair = Pair()
    pair.connect()
    frame = tool_request_text('{"id": "t-9", "toolName": "lookup", "args": ' + args + "}")
    pair.client.receive_frame(frame, now=NOW)
    event = violation(pair.client)
    assert event.reason.startswith(reason)
    assert event.reason.endswith("; answered with an error result")
    [response] = parsed(pair.client.frames_to_send())
    assert response["type"] == "websocketToolResponse"
    assert response["channelId"] is None
    assert response["content"]["id"] == "t-9"
    assert response["content"]["result"]["error"].startswith(f"invalid request: {reason}")
    assert pair.client.pending_tool_ids == frozenset()
    # Answered once: the same invalid request again is only reported.
    pair.client.receive_frame(frame, now=NOW)
    assert not violation(pair.client).reason.endswith("answered with an error result")
    assert pair.client.frames_to_send() == []


@pytest.mark.parametrize(
    "content",
    [
        '{"id": 7, "toolName": "lookup", "args": []}',
        '{"toolName": "lookup", "args": []}',
        '"not an object"',
        '{"id": "t-1", "toolName": "lookup", "args": {"v": [}}',
    ],
    ids=["numeric-id", "no-id", "content-not-an-object", "not-json"],
)
def test_an_invalid_tool_request_without_a_readable_id_is_only_reported(content: str) -> None:
    pair = Pair()
    pair.connect()
    pair.client.receive_frame(tool_request_text(content), now=NOW)
    assert not violation(pair.client).reason.endswith("answered with an error result")
    assert pair.client.frames_to_send() == []


def test_an_invalid_tool_request_reusing_an_id_is_only_reported() -> None:
    pair = Pair()
    pair.connect()
    pair.request_tool("t1")
    frame = tool_request_text('{"id": "t1", "toolName": "lookup", "args": [0]}')
    pair.client.receive_frame(frame, now=NOW)
    violation(pair.client)
    assert pair.client.frames_to_send() == []
    assert pair.client.pending_tool_ids == {"t1"}


def test_tool_requests_beyond_the_pending_bound_are_answered_at_once() -> None:
    pair = Pair(max_pending_tools=2)
    pair.connect()
    pair.request_tool("t1")
    pair.request_tool("t2")
    pair.server.request_tool("t3", "lookup", {}, now=NOW)
    event = only(pair.to_client())
    assert isinstance(event, ProtocolViolation)
    assert event.reason == "2 tool requests await a reply already; answered with an error result"
    [response] = parsed(pair.client.frames_to_send())
    assert response["content"] == {
        "id": "t3",
        "result": {"error": "2 tool requests await a reply already"},
    }
    assert pair.client.pending_tool_ids == {"t1", "t2"}
    # Once one is answered, the next request is the app's again.
    pair.client.reply_to_tool("t1", 1, now=NOW)
    pair.request_tool("t4")
    assert pair.client.pending_tool_ids == {"t2", "t4"}


def test_only_the_latest_tool_ids_are_remembered() -> None:
    pair = Pair()
    pair.connect()
    for number in range(4097):
        pair.server.request_tool(f"t{number}", "lookup", {}, now=NOW)
        pair.to_client()
        pair.client.reply_to_tool(f"t{number}", 1, now=NOW)
        pair.client.frames_to_send()
    # The oldest id was forgotten: the same id again is a new request; the latest are not.
    pair.client.receive_frame(
        tool_request_text('{"id": "t0", "toolName": "x", "args": {}}'), now=NOW
    )
    assert isinstance(only(pair.client.events_received()), ToolRequested)
    pair.client.receive_frame(
        tool_request_text('{"id": "t4096", "toolName": "x", "args": {}}'), now=NOW
    )
    assert violation(pair.client).reason == "a second tool request with id 't4096'"


def test_an_invalid_tool_request_too_big_to_read_is_only_reported() -> None:
    pair = Pair()
    pair.connect()
    padding = "x" * (1024 * 1024)
    frame = tool_request_text(
        '{"id": "t-1", "toolName": "lookup", "args": [], "pad": "' + padding + '"}'
    )
    pair.client.receive_frame(frame, now=NOW)
    violation(pair.client)
    assert pair.client.frames_to_send() == []


def test_an_invalid_tool_request_before_the_session_is_only_reported() -> None:
    pair = Pair()
    pair.start()
    frame = tool_request_text('{"id": "t-1", "toolName": "lookup", "args": [0]}')
    pair.client.receive_frame(frame, now=NOW)
    violation(pair.client)
    assert pair.client.frames_to_send() == []


# Timers.


def test_no_deadline_means_handle_timer_does_nothing() -> None:
    client = ClientConnection()
    assert client.next_deadline() is None
    client.handle_timer(now=NOW + 1e6)
    assert client.state is S.AWAITING_INITIALIZE
    assert client.events_received() == []
    assert client.frames_to_send() == []


@pytest.mark.parametrize(
    ("call_type", "steps", "option", "waiting_for"),
    [
        (CallType.CHAT, [], "session_timeout", "event connection"),
        (CallType.WEB_CALL, ["accept"], "offer_timeout", "sdpInvite"),
        (CallType.CHAT, ["accept", "terminate"], "terminate_timeout", TERMINATE_WAIT),
        (CallType.CHAT, ["terminate"], "terminate_timeout", TERMINATE_WAIT),
    ],
    ids=["session", "offer", "terminate", "terminate-before-session"],
)  # fmt: skip
def test_awaited_states_time_out(
    call_type: CallType, steps: list[str], option: str, waiting_for: str
) -> None:
    pair = Pair(**{option: 3.0})
    pair.start(call_type)
    if steps:
        pair.now += 1.0
    for step in steps:
        if step == "accept":
            pair.server.accept(now=pair.now)
            pair.to_client()
        else:
            pair.client.terminate(now=pair.now)
    deadline = pair.now + 3.0
    assert pair.client.next_deadline() == deadline
    pair.client.handle_timer(now=deadline - 0.001)
    assert pair.client.events_received() == []
    pair.client.handle_timer(now=deadline)
    assert pair.client.state is S.FAILED
    event = only(pair.client.events_received())
    assert isinstance(event, ConversationFailed)
    assert isinstance(event.error, ProtocolTimeout)
    assert event.error.waiting_for == waiting_for
    assert event.error.seconds == 3.0
    assert pair.client.error is event.error
    assert pair.client.next_deadline() is None
    pair.client.frames_to_send()
    pair.client.handle_timer(now=deadline + 100)
    assert pair.client.events_received() == []
    assert pair.client.frames_to_send() == []


def test_the_session_deadline_is_cleared_by_the_session() -> None:
    pair = Pair(session_timeout=3.0)
    pair.start()
    pair.server.accept(now=NOW)
    pair.to_client()
    assert pair.client.next_deadline() is None
    pair.client.handle_timer(now=NOW + 100)
    assert pair.client.state is S.ACTIVE


def test_messages_that_keep_the_state_do_not_postpone_its_deadline() -> None:
    pair = Pair(session_timeout=3.0)
    pair.start()
    pair.now = NOW + 2.0
    pair.client.send_text("early", now=pair.now)
    pair.server.send_event("opened", now=pair.now)
    pair.to_server()
    pair.to_client()
    assert pair.client.state is S.AWAITING_SESSION
    assert pair.client.next_deadline() == NOW + 3.0


def test_a_tool_not_answered_in_time_gets_an_error_result() -> None:
    pair = Pair(tool_timeout=5.0)
    pair.connect()
    pair.now = NOW + 1.0
    pair.request_tool("t1", "lookup")
    pair.now = NOW + 2.0
    pair.request_tool("t2", "book")
    assert pair.client.next_deadline() == NOW + 6.0
    pair.client.handle_timer(now=NOW + 5.999)
    assert pair.client.frames_to_send() == []
    pair.client.handle_timer(now=NOW + 6.0)
    assert pair.client.events_received() == [ToolTimedOut("t1", "lookup")]
    assert pair.client.pending_tool_ids == {"t2"}
    assert pair.client.next_deadline() == NOW + 7.0
    assert pair.to_server() == [
        ToolResponseReceived("t1", {"error": "the tool 'lookup' did not answer in time"})
    ]
    with pytest.raises(LocalProtocolError):
        pair.client.reply_to_tool("t1", "late", now=NOW + 6.5)
    pair.client.handle_timer(now=NOW + 30.0)
    assert pair.client.events_received() == [ToolTimedOut("t2", "book")]
    assert pair.client.state is S.ACTIVE
    assert pair.client.next_deadline() is None


def test_the_next_deadline_is_the_earliest_of_state_and_tools() -> None:
    pair = Pair(offer_timeout=10.0, tool_timeout=4.0)
    pair.connect(CallType.WEB_CALL)
    assert pair.client.next_deadline() == NOW + 10.0
    pair.request_tool("t1")
    assert pair.client.next_deadline() == NOW + 4.0
    pair.client.reply_to_tool("t1", 1, now=NOW)
    assert pair.client.next_deadline() == NOW + 10.0


def test_the_server_waits_for_initialize_from_its_creation() -> None:
    server = ServerConnection(now=NOW, initialize_timeout=4.0)
    assert server.next_deadline() == NOW + 4.0
    server.handle_timer(now=NOW + 3.9)
    assert server.frames_to_send() == []
    server.handle_timer(now=NOW + 4.0)
    assert server.state is S.FAILED
    [frame] = parsed(server.frames_to_send())
    assert (frame["type"], frame["data"]) == ("error", {"message": "Init message not received"})
    event = only(server.events_received())
    assert isinstance(event, ConversationFailed)
    assert isinstance(event.error, ClientBugError)
    assert server.next_deadline() is None
    # A client that never initialized learns why.
    client = ClientConnection()
    client.receive_frame(json.dumps(frame), now=NOW)
    assert client.state is S.FAILED
    assert isinstance(client.error, ClientBugError)
    assert client.error.message == "Init message not received"


def test_initialize_clears_the_server_deadline() -> None:
    pair = Pair()
    pair.start()
    assert pair.server.next_deadline() is None
    pair.server.handle_timer(now=NOW + 1e6)
    assert pair.server.state is S.AWAITING_SESSION


# Error frames.


@pytest.mark.parametrize(
    ("message", "error_type"),
    [
        ("Missing token", AuthenticationError),
        ("Invalid token", AuthenticationError),
        ("Web integration is not enabled", ConfigurationError),
        ("Origin not allowed", ConfigurationError),
        ("Init message not received", ClientBugError),
        ("Multiple init messages received", ClientBugError),
        ("Too large message", ClientBugError),
        ("Quota exceeded, try later", ClientBugError),
    ],
)
def test_error_frames_fail_both_ends_with_a_typed_error(
    message: str, error_type: type[ServiceError]
) -> None:
    pair = Pair()
    pair.start()
    pair.server.send_error(message, now=NOW)
    assert pair.server.state is S.FAILED
    server_event = only(pair.server.events_received())
    assert isinstance(server_event, ConversationFailed)
    events = pair.to_client()
    assert pair.client.state is S.FAILED
    event = only(events)
    assert isinstance(event, ConversationFailed)
    assert type(event.error) is error_type
    assert isinstance(event.error, ServiceError)
    assert event.error.message == message
    assert str(event.error) == message
    assert pair.client.error is event.error
    assert pair.client.next_deadline() is None


def test_an_error_before_initialize_fails_the_client() -> None:
    client = ClientConnection()
    client.receive_frame(wire({"type": "error", "data": {"message": "Invalid token"}}), now=NOW)
    assert client.state is S.FAILED
    assert isinstance(client.error, AuthenticationError)
    with pytest.raises(LocalProtocolError):
        client.initialize(CallType.CHAT, now=NOW)


def test_an_error_after_the_result_is_a_violation() -> None:
    pair = Pair()
    pair.connect()
    pair.server.end(now=NOW)
    pair.to_client()
    pair.client.receive_frame(wire({"type": "error", "data": {"message": "late"}}), now=NOW)
    assert "unexpected error in state ended" in violation(pair.client).reason
    assert pair.client.state is S.ENDED
    assert pair.client.error is None


# The service's rules on the server.


def test_a_second_initialize_gets_the_documented_error() -> None:
    pair = Pair()
    pair.start()
    again = encode(Initialize(request=InitializeRequest(call_type="chat")), now=NOW)
    pair.server.receive_frame(again, now=NOW)
    events = pair.server.events_received()
    assert [type(event) for event in events] == [ProtocolViolation, ConversationFailed]
    assert pair.server.state is S.FAILED
    events = pair.to_client()
    error = only(events)
    assert isinstance(error, ConversationFailed)
    assert isinstance(error.error, ClientBugError)
    assert error.error.message == "Multiple init messages received"


def test_a_second_initialize_after_the_end_only_is_a_violation() -> None:
    pair = Pair()
    pair.connect()
    pair.server.end(now=NOW)
    pair.server.frames_to_send()
    again = encode(Initialize(request=InitializeRequest(call_type="chat")), now=NOW)
    pair.server.receive_frame(again, now=NOW)
    assert "unexpected initialize" in violation(pair.server).reason
    assert pair.server.state is S.ENDED
    assert pair.server.frames_to_send() == []


def test_the_client_initializes_once() -> None:
    pair = Pair()
    pair.start()
    with pytest.raises(LocalProtocolError):
        pair.client.initialize(CallType.CHAT, now=NOW)
    assert pair.client.frames_to_send() == []
    assert pair.client.state is S.AWAITING_SESSION


def test_an_unknown_call_type_is_refused_on_both_ends() -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError, match="unknown call type 'video'"):
        client.initialize("video", now=NOW)
    assert client.state is S.AWAITING_INITIALIZE
    assert client.frames_to_send() == []

    server = ServerConnection(now=NOW, initialize_timeout=5.0)
    server.receive_frame(wire({"type": "initialize", "request": {"callType": "video"}}), now=NOW)
    assert violation(server).reason == "unknown call type 'video'"
    assert server.state is S.AWAITING_INITIALIZE
    assert server.call_type is None
    # The client may still initialize properly, within the same deadline.
    assert server.next_deadline() == NOW + 5.0
    server.receive_frame(wire({"type": "initialize", "request": {"callType": "webCall"}}), now=NOW)
    assert server.events_received() == [InitializeReceived(CallType.WEB_CALL, None, None)]
    assert server.call_type is CallType.WEB_CALL


# Frames that are not valid messages.


def test_an_oversized_frame_is_a_violation_for_the_client() -> None:
    pair = Pair(max_frame_size=200)
    pair.connect()
    text = wire({"type": "text", "content": {"source": "assistant", "text": "x" * 300}})
    pair.client.receive_frame(text, now=NOW)
    event = violation(pair.client)
    assert event.reason == f"a frame of {len(text)} characters is over the 200 limit"
    assert event.excerpt == text[:200]
    assert pair.client.state is S.ACTIVE
    assert pair.client.frames_to_send() == []


def test_a_frame_at_the_limit_is_accepted() -> None:
    frame = wire({"type": "text", "content": {"source": "assistant", "text": "hi"}})
    pair = Pair(max_frame_size=len(frame))
    pair.connect()
    pair.client.receive_frame(frame, now=NOW)
    assert pair.client.events_received() == [ReplyStarted(), TextReceived("assistant", "hi", False)]


def test_an_oversized_frame_gets_the_documented_error_from_the_server() -> None:
    server = ServerConnection(now=NOW, max_frame_size=150)
    server.receive_frame(wire({"type": "initialize", "request": {"callType": "chat"}}), now=NOW)
    assert server.events_received() == [InitializeReceived(CallType.CHAT, None, None)]
    big = wire({"type": "incomingChatMessage", "content": "x" * 200})
    server.receive_frame(big, now=NOW)
    events = server.events_received()
    assert [type(event) for event in events] == [ProtocolViolation, ConversationFailed]
    [frame] = parsed(server.frames_to_send())
    assert frame["data"] == {"message": "Too large message"}
    assert server.state is S.FAILED


def test_an_oversized_frame_after_the_end_gets_no_error() -> None:
    server = ServerConnection(now=NOW, max_frame_size=150)
    server.receive_frame(wire({"type": "initialize", "request": {"callType": "chat"}}), now=NOW)
    server.accept(now=NOW)
    server.end(now=NOW)
    server.frames_to_send()
    server.events_received()
    server.receive_frame(wire({"type": "incomingChatMessage", "content": "x" * 200}), now=NOW)
    assert "over the 150 limit" in violation(server).reason
    assert server.frames_to_send() == []
    assert server.state is S.ENDED


@pytest.mark.parametrize("role", list(Role))
def test_a_binary_frame_is_a_violation(role: Role) -> None:
    pair = Pair()
    pair.connect()
    end = pair.client if role is Role.CLIENT else pair.server
    payload = b'{"type":"text"}' + b"\x00" * 300
    end.receive_frame(payload, now=NOW)
    event = violation(end)
    assert event.reason == "binary frames are not part of the protocol"
    assert event.excerpt == repr(payload[:200])[:200]
    assert end.state is S.ACTIVE
    assert end.frames_to_send() == []


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a frame must be a JSON object, got an array"),
        ('{"type": 5}', "$.type: expected a string, got a number"),
        ('{"type": "text", "content": {"source": "assistant"}}', "invalid text"),
        ('{"type": "terminate", "timestamp": 3}', "invalid terminate"),
    ],
    ids=["not-json", "array", "type", "shape", "envelope"],
)
def test_an_invalid_frame_is_a_violation(role: Role, frame: str, reason: str) -> None:
    pair = Pair()
    pair.connect()
    end = pair.client if role is Role.CLIENT else pair.server
    end.receive_frame(frame, now=NOW)
    event = violation(end)
    assert event.reason.startswith(reason)
    assert event.excerpt == frame
    assert end.state is S.ACTIVE


def test_the_excerpt_is_the_start_of_the_frame() -> None:
    pair = Pair()
    pair.connect()
    frame = "{" + "x" * 500
    pair.client.receive_frame(frame, now=NOW)
    assert violation(pair.client).excerpt == frame[:200]


@pytest.mark.parametrize(
    ("role", "frame"),
    [
        (Role.CLIENT, wire({"type": "initialize", "request": {"callType": "chat"}})),
        (Role.CLIENT, wire({"type": "incomingChatMessage", "content": "hi"})),
        (Role.CLIENT, wire({"type": "terminate"})),
        (Role.SERVER, wire({"type": "text", "content": {"source": "user", "text": "x"}})),
        (Role.SERVER, wire({"type": "event", "name": "connection"})),
        (Role.SERVER, wire({"type": "error", "data": {"message": "Invalid token"}})),
    ],
)
def test_a_message_of_the_wrong_direction_is_a_violation(role: Role, frame: str) -> None:
    pair = Pair()
    pair.connect()
    end = pair.client if role is Role.CLIENT else pair.server
    end.receive_frame(frame, now=NOW)
    assert f"is sent by a {role.value}, not to one" in violation(end).reason
    assert end.state is S.ACTIVE
    assert end.error is None


def test_an_unexpected_message_is_a_violation() -> None:
    pair = Pair()
    pair.connect()  # chat: no media
    pair.client.receive_frame(wire({"type": "sdpInvite", "data": {"invite": OFFER}}), now=NOW)
    assert violation(pair.client).reason == "unexpected sdpInvite in state active"
    pair.client.receive_frame(wire({"type": "event", "name": "connection"}), now=NOW)
    assert violation(pair.client).reason == "unexpected event connection in state active"
    assert pair.client.state is S.ACTIVE


# SDP limits.


def test_an_offer_over_the_sdp_limit_fails_the_call() -> None:
    # Nothing can come instead of the offer: waiting for the offer's deadline
    # would only fail later, with a misleading reason.
    pair = Pair(max_sdp_size=len(OFFER) - 1)
    pair.connect(CallType.WEB_CALL)
    pair.server.offer(OFFER, now=NOW)
    event = only(pair.to_client())
    assert isinstance(event, ConversationFailed)
    assert isinstance(event.error, RemoteProtocolError)
    assert str(event.error) == (
        f"the offer cannot be answered: an SDP of {len(OFFER)} characters "
        f"is over the {len(OFFER) - 1} limit"
    )
    assert pair.client.state is S.FAILED
    assert pair.client.frames_to_send() == []


def test_an_offer_at_the_sdp_limit_is_accepted() -> None:
    pair = Pair(max_sdp_size=len(OFFER))
    pair.connect(CallType.WEB_CALL)
    pair.server.offer(OFFER, now=NOW)
    assert pair.to_client() == [OfferReceived(OFFER)]


def test_an_answer_over_the_sdp_limit_is_refused_by_the_server() -> None:
    pair = Pair()
    pair.server = ServerConnection(now=NOW, max_sdp_size=len(ANSWER) - 1)
    pair.connect(CallType.WEB_CALL)
    pair.server.offer(OFFER, now=NOW)
    pair.to_client()
    pair.client.answer(ANSWER, now=NOW)
    event = only(pair.to_server())
    assert isinstance(event, ProtocolViolation)
    assert "over the" in event.reason
    assert pair.server.state is S.ANSWERING


# The close.


@pytest.mark.parametrize("how", ["terminate", "end", "error"])
def test_a_close_after_the_conversation_is_clean(how: str) -> None:
    pair = Pair(tool_timeout=5.0)
    pair.connect()
    if how == "terminate":
        pair.client.terminate(now=NOW)
        pair.to_server()
        pair.request_tool("t1")  # crossing the terminate: left unanswered
    elif how == "end":
        pair.server.end(now=NOW)
        pair.to_client()
    else:
        pair.server.send_error("Invalid token", now=NOW)
        pair.to_client()
    error = pair.client.error
    pair.client.receive_close(None)
    assert pair.client.events_received() == [ConnectionClosed(None, "")]
    assert pair.client.state is S.CLOSED
    assert pair.client.error is error
    assert pair.client.next_deadline() is None
    assert pair.client.pending_tool_ids == frozenset()
    pair.client.handle_timer(now=NOW + 1e6)
    assert pair.client.events_received() == []
    assert pair.client.frames_to_send() == []


@pytest.mark.parametrize(("code", "reason"), [(1011, "server restarting"), (1007, ""), (None, "")])
@pytest.mark.parametrize("role", list(Role))
def test_a_close_during_the_conversation_is_a_disconnection(
    role: Role, code: int | None, reason: str
) -> None:
    pair = Pair()
    pair.connect()
    end = pair.client if role is Role.CLIENT else pair.server
    end.receive_close(code, reason)
    failed, closed = end.events_received()
    assert closed == ConnectionClosed(code, reason)
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, DisconnectedError)
    assert (failed.error.code, failed.error.reason) == (code, reason)
    assert end.error is failed.error
    assert end.state is S.CLOSED


def test_a_close_before_initialize_is_a_disconnection_for_the_server() -> None:
    server = ServerConnection(now=NOW)
    server.receive_close(1001)
    failed, closed = server.events_received()
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, DisconnectedError)
    assert closed == ConnectionClosed(1001, "")
    assert server.next_deadline() is None


@pytest.mark.parametrize("role", list(Role))
def test_nothing_can_happen_after_the_close(role: Role) -> None:
    pair = Pair()
    pair.connect()
    end = pair.client if role is Role.CLIENT else pair.server
    end.receive_close(1000)
    end.events_received()
    with pytest.raises(LocalProtocolError, match="closed"):
        end.receive_frame(wire({"type": "terminate"}), now=NOW)
    with pytest.raises(LocalProtocolError, match="already closed"):
        end.receive_close(1000)
    with pytest.raises(LocalProtocolError):
        end.send_text("hi", now=NOW)
    assert end.events_received() == []
    assert end.frames_to_send() == []
    assert end.state is S.CLOSED


@pytest.mark.parametrize("role", list(Role))
def test_frames_after_a_failure_are_ignored(role: Role) -> None:
    pair = Pair()
    pair.connect()
    pair.server.send_error("Invalid token", now=NOW)
    pair.to_client()
    end = pair.client if role is Role.CLIENT else pair.server
    end.events_received()
    for frame in (
        wire({"type": "text", "content": {"source": "assistant", "text": "x"}}),
        wire({"type": "terminate"}),
        encode(Initialize(request=InitializeRequest(call_type="chat")), now=NOW),
        "not json",
        b"binary",
        "x" * 10_000_000,
    ):
        end.receive_frame(frame, now=NOW)
    assert end.events_received() == []
    assert end.frames_to_send() == []
    assert end.state is S.FAILED


def test_commands_in_a_failed_conversation_are_refused() -> None:
    pair = Pair()
    pair.connect()
    pair.server.send_error("Invalid token", now=NOW)
    pair.to_client()
    with pytest.raises(LocalProtocolError):
        pair.client.terminate(now=NOW)
    with pytest.raises(LocalProtocolError):
        pair.server.end(now=NOW)
    with pytest.raises(LocalProtocolError):
        pair.server.send_error("again", now=NOW)
    assert (pair.client.frames_to_send(), pair.server.frames_to_send()) == ([], [])


def test_a_terminate_crossing_the_result_ends_both() -> None:
    pair = Pair()
    pair.connect()
    pair.client.terminate(now=NOW)
    pair.server.end(now=NOW)
    pair.to_client()
    # The terminate crossed the result: no news for the server, and no violation.
    assert pair.to_server() == []
    assert pair.states() == (S.ENDED, S.ENDED)


def test_a_terminate_before_the_session_is_allowed() -> None:
    pair = Pair()
    pair.start()
    pair.client.terminate(now=NOW)
    assert pair.to_server() == [TerminateReceived()]
    assert pair.states() == (S.TERMINATING, S.TERMINATING)
    frame = json.loads(encode(Terminate(), now=NOW))
    assert frame == {
        "type": "terminate",
        "timestamp": STAMP,
        "channelId": None,
    }


# The shared base.


class _Forgetful(_Connection):
    """A connection class that forgot to say how it accepts messages."""

    _role: ClassVar[Role] = Role.CLIENT


def test_a_connection_class_must_implement_accept() -> None:
    end = _Forgetful(timeouts={}, max_frame_size=1000, max_sdp_size=1000, wall_clock=None)
    with pytest.raises(NotImplementedError):
        end.receive_frame(wire({"type": "futureFeature"}), now=NOW)


def answered_client() -> ClientConnection:
    """A client of a voice call that has answered ``OFFER``."""
    client = ClientConnection()
    client.initialize("webCall", now=NOW)
    client.receive_frame(wire({"type": "event", "name": "connection"}), now=NOW)
    client.receive_frame(wire({"type": "sdpInvite", "data": {"invite": OFFER}}), now=NOW)
    client.answer(ANSWER, now=NOW)
    client.events_received()
    client.frames_to_send()
    return client


def test_a_second_different_offer_fails_a_voice_call() -> None:
    client = answered_client()
    renegotiation = OFFER.replace("o=- 1 1", "o=- 1 2")
    client.receive_frame(wire({"type": "sdpInvite", "data": {"invite": renegotiation}}), now=NOW)
    (failed,) = client.events_received()  # no OfferReceived: nothing to answer
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, RemoteProtocolError)
    assert str(failed.error) == (
        "sdpInvite with a new offer in state active: the conversation cannot go on"
    )
    assert client.state is S.FAILED


@pytest.mark.parametrize("key", ["invite", "sdpOffer"])
def test_the_same_offer_again_is_reported_and_not_answered(key: str) -> None:
    client = answered_client()
    client.receive_frame(wire({"type": "sdpInvite", "data": {key: OFFER}}), now=NOW)
    (violation,) = client.events_received()
    assert isinstance(violation, ProtocolViolation)
    assert violation.reason == "the offer again (the same SDP): ignored, it is answered once"
    assert client.state is S.ACTIVE
    assert client.frames_to_send() == []
    with pytest.raises(LocalProtocolError):
        client.answer(ANSWER, now=NOW)


def test_a_server_that_sends_a_different_second_offer_fails_too() -> None:
    pair = Pair()
    pair.voice_active()
    pair.server.offer(OFFER.replace("o=- 1 1", "o=- 1 2"), now=NOW)
    (failed,) = pair.server.events_received()
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, LocalProtocolError)
    pair.to_client()
    assert (pair.client.state, pair.server.state) == (S.FAILED, S.FAILED)


def test_a_server_may_repeat_its_offer() -> None:
    pair = Pair()
    pair.voice_active()
    pair.server.offer(OFFER, now=NOW)
    assert pair.server.events_received() == []
    [violation] = pair.to_client()
    assert isinstance(violation, ProtocolViolation)
    assert (pair.client.state, pair.server.state) == (S.ACTIVE, S.ACTIVE)


def test_can_terminate_follows_the_table() -> None:
    client = ClientConnection()
    assert not client.can_terminate  # nothing started yet
    client.initialize("chat", now=NOW)
    assert client.can_terminate
    client.terminate(now=NOW)
    assert not client.can_terminate  # already ending
