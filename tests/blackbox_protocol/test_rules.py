"""The connection's rules for drivers and apps.

What may be done now (``should_close``, ``can_answer``, ``can_send_text``),
the call type, the two clocks (``now`` for deadlines and turns, ``wall_clock``
for the wire's timestamps), where a reply in progress ends, and which errors
are worth connecting again for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Final

import pytest
from blackbox_protocol import (
    AuthenticationError,
    BlackBoxError,
    CallType,
    ClientBugError,
    ClientConnection,
    ConfigurationError,
    ConnectError,
    ConnectionClosed,
    ConnectionState,
    ConversationEnded,
    ConversationFailed,
    DisconnectedError,
    InvalidMessage,
    LocalProtocolError,
    MediaError,
    MediaNotConnected,
    NoReply,
    ProtocolTimeout,
    RemoteProtocolError,
    ReplyEnded,
    ReplyStarted,
    ReplyTimeout,
    ServerConnection,
    ServiceError,
    ToolRequested,
    Turn,
    UserTurnEnded,
    parse_call_type,
)
from blackbox_protocol.events import Event
from blackbox_protocol.messages import ConversationResultData

from tests.blackbox_protocol._links import CLIENT, HISTORIES, NOW, History, allowed, setup

S = ConnectionState
#: 1_700_000_000.0 on the wire.
STAMP: Final = "2023-11-14T22:13:20.000Z"
IDS: Final = [f"{call_type.value}-{name}" for call_type, name in HISTORIES]


# What may be done now.


@pytest.mark.parametrize("history", list(HISTORIES), ids=IDS)
def test_should_close_once_ended_or_failed_only(history: History) -> None:
    link = setup(history)
    over = history[1] in ("ended", "failed")
    for end in (link.client, link.server):
        assert end.should_close is over, end.state
        end.receive_close(1000)
        assert not end.should_close  # closed already


@pytest.mark.parametrize("history", list(HISTORIES), ids=IDS)
def test_can_answer_only_while_answering(history: History) -> None:
    link = setup(history)
    expected = history == (CallType.WEB_CALL, "answering")
    assert link.client.can_answer is expected
    assert allowed(history, CLIENT["answer"]) is expected
    link.client.receive_close(1000)
    assert not link.client.can_answer


#: Where chat text may be sent: once initialized in chat (the service takes it
#: before the session too), and once the media runs in a voice call.
SENDS_TEXT: Final = {
    (CallType.CHAT, "awaiting session"),
    (CallType.CHAT, "active"),
    (CallType.WEB_CALL, "active"),
}


@pytest.mark.parametrize("history", list(HISTORIES), ids=IDS)
def test_can_send_text_says_whether_send_text_is_allowed(history: History) -> None:
    link = setup(history)
    expected = history in SENDS_TEXT
    assert link.client.can_send_text is expected
    assert allowed(history, CLIENT["chat text"]) is expected
    link.client.receive_close(1000)
    assert not link.client.can_send_text


# The call type.


@pytest.mark.parametrize("call_type", list(CallType))
def test_call_type_is_known_once_initialize_is_sent(call_type: CallType) -> None:
    client = ClientConnection()
    assert client.call_type is None
    client.initialize(call_type.value, now=NOW)
    assert client.call_type is call_type


def test_a_refused_initialize_leaves_the_call_type_unknown() -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError):
        client.initialize("voice", now=NOW)
    assert client.call_type is None
    client.initialize(CallType.CHAT, now=NOW)
    with pytest.raises(LocalProtocolError):
        client.initialize(CallType.WEB_CALL, now=NOW)
    assert client.call_type is CallType.CHAT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("chat", CallType.CHAT),
        ("webCall", CallType.WEB_CALL),
        ("onPhone", CallType.ON_PHONE),
        (CallType.WEB_CALL, CallType.WEB_CALL),
    ],
)
def test_parse_call_type_reads_the_protocol_s_names(value: str, expected: CallType) -> None:
    assert parse_call_type(value) is expected


@pytest.mark.parametrize("value", ["voice", "Chat", "webcall", "", " chat"])
def test_parse_call_type_refuses_other_names(value: str) -> None:
    with pytest.raises(LocalProtocolError, match="unknown call type") as raised:
        parse_call_type(value)
    assert str(raised.value) == f"unknown call type {value!r}"


# The two clocks.


def stamps(frames: list[str]) -> list[str]:
    return [json.loads(frame)["timestamp"] for frame in frames]


def test_frames_are_stamped_by_the_wall_clock_and_deadlines_count_from_now() -> None:
    client = ClientConnection(session_timeout=10.0, wall_clock=lambda: 1_700_000_000.0)
    client.initialize(CallType.CHAT, now=5.0)
    assert stamps(client.frames_to_send()) == [STAMP]
    assert client.next_deadline() == 5.0 + 10.0


def test_the_server_s_frames_are_stamped_by_its_wall_clock_too() -> None:
    server = ServerConnection(now=5.0, initialize_timeout=3.0, wall_clock=lambda: 1_700_000_000.0)
    assert server.next_deadline() == 5.0 + 3.0
    client = ClientConnection()
    client.initialize(CallType.CHAT, now=7.0)
    for frame in client.frames_to_send():
        server.receive_frame(frame, now=7.0)
    server.accept(job_id="job-1", now=7.0)
    assert stamps(server.frames_to_send()) == [STAMP]


def test_the_wall_clock_is_read_for_every_frame() -> None:
    readings = iter([1_700_000_000.0, 1_700_000_000.25, 1_700_000_001.5])
    client = ClientConnection(wall_clock=lambda: next(readings))
    client.initialize(CallType.CHAT, now=1.0)
    client.send_text("one", now=2.0)
    client.send_text("two", now=3.0)
    assert stamps(client.frames_to_send()) == [
        STAMP,
        "2023-11-14T22:13:20.250Z",
        "2023-11-14T22:13:21.500Z",
    ]


def test_without_a_wall_clock_frames_are_stamped_with_now() -> None:
    client = ClientConnection()
    client.initialize(CallType.CHAT, now=1_700_000_000.0)
    assert stamps(client.frames_to_send()) == [STAMP]


def frame(**fields: object) -> str:
    return json.dumps({"timestamp": STAMP, "channelId": None, **fields})


def test_turn_times_are_on_the_now_clock() -> None:
    client = ClientConnection(reply_pause=2.0, wall_clock=lambda: 1_700_000_000.0)
    client.initialize(CallType.CHAT, now=5.0)
    client.receive_frame(frame(type="event", name="connection", data={}), now=6.0)
    client.receive_frame(frame(type="text", content={"source": "user", "text": "a"}), now=7.0)
    assert client.current_turn == Turn("user", "a", 7.0, 7.0, ("a",))
    assert client.next_deadline() == 7.0 + 2.0


# Where a reply in progress ends.


class Chat:
    """A running chat whose agent has begun a reply: ``Hi`` at ``NOW``."""

    def __init__(self, client: ClientConnection | None = None) -> None:
        self.client = client or ClientConnection()
        self.server = ServerConnection(now=NOW)
        self.client.initialize(CallType.CHAT, now=NOW)
        self.deliver()
        self.server.accept(job_id="job-1", now=NOW)
        self.deliver()
        self.server.send_text("Hi", now=NOW)
        assert self.deliver()[0] == ReplyStarted()
        self.reply = Turn("assistant", "Hi", NOW, NOW, ("Hi",))

    def deliver(self, now: float = NOW) -> list[Event]:
        """Deliver the frames in flight both ways; return the client's events."""
        for frame in self.client.frames_to_send():
            self.server.receive_frame(frame, now=now)
        for frame in self.server.frames_to_send():
            self.client.receive_frame(frame, now=now)
        self.server.events_received()
        return self.client.events_received()

    def reply_ended(self) -> ReplyEnded:
        return ReplyEnded("Hi", self.reply)


def test_the_result_ends_the_reply_before_it_is_reported() -> None:
    chat = Chat()
    chat.server.end(now=NOW + 0.1)
    result = ConversationResultData(status="Completed")
    assert chat.deliver(NOW + 0.1) == [chat.reply_ended(), ConversationEnded(result)]
    assert chat.client.transcript == (chat.reply,)


def test_an_error_frame_ends_the_reply_before_the_failure() -> None:
    chat = Chat()
    chat.server.send_error("Invalid token", now=NOW)
    ended, failed = chat.deliver()
    assert ended == chat.reply_ended()
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, AuthenticationError)


def test_a_timeout_ends_the_reply_before_the_failure() -> None:
    chat = Chat(ClientConnection(reply_pause=100.0, terminate_timeout=5.0))
    chat.client.terminate(now=NOW)
    chat.client.frames_to_send()  # the server never answers
    chat.client.handle_timer(now=NOW + 5.0)
    ended, failed = chat.client.events_received()
    assert ended == chat.reply_ended()
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, ProtocolTimeout)


def test_a_close_ends_the_reply_before_the_failure_and_the_close() -> None:
    chat = Chat()
    chat.client.receive_close(1011, "restarting")
    ended, failed, closed = chat.client.events_received()
    assert ended == chat.reply_ended()
    assert isinstance(failed, ConversationFailed)
    assert isinstance(failed.error, DisconnectedError)
    assert closed == ConnectionClosed(1011, "restarting")


def test_a_clean_close_ends_the_reply_before_the_close() -> None:
    chat = Chat()
    chat.client.terminate(now=NOW)
    chat.client.frames_to_send()
    chat.client.receive_close(1000)
    assert chat.client.events_received() == [chat.reply_ended(), ConnectionClosed(1000, "")]


def test_text_after_the_result_is_a_turn_ended_by_the_close() -> None:
    chat = Chat()
    chat.server.end(now=NOW)
    chat.deliver()
    chat.server.send_text("Bye", now=NOW + 0.1)
    assert chat.deliver(NOW + 0.1)[0] == ReplyStarted()
    bye = Turn("assistant", "Bye", NOW + 0.1, NOW + 0.1, ("Bye",))
    chat.client.receive_close(1000)
    assert chat.client.events_received() == [ReplyEnded("Bye", bye), ConnectionClosed(1000, "")]
    assert chat.client.transcript == (chat.reply, bye)


def test_send_text_ends_the_reply_at_once() -> None:
    chat = Chat()
    chat.client.send_text("Hello", now=NOW + 0.1)
    assert chat.client.events_received() == [chat.reply_ended()]
    assert chat.client.current_turn is None
    # The echo of the user's words is the next turn.
    chat.server.send_text("Hello", source="user", now=NOW + 0.2)
    chat.deliver(NOW + 0.2)
    user = Turn("user", "Hello", NOW + 0.2, NOW + 0.2, ("Hello",))
    assert chat.client.current_turn == user
    chat.server.send_text("Sure", now=NOW + 0.3)
    assert chat.deliver(NOW + 0.3)[:2] == [UserTurnEnded("Hello", user), ReplyStarted()]


def test_a_tool_request_ends_the_reply_before_it_is_reported() -> None:
    chat = Chat()
    chat.server.request_tool("t1", "lookup", {"city": "Paris"}, now=NOW + 0.1)
    assert chat.deliver(NOW + 0.1) == [
        chat.reply_ended(),
        ToolRequested("t1", "lookup", {"city": "Paris"}),
    ]


def test_the_pause_deadline_is_among_the_client_s_deadlines() -> None:
    chat = Chat(ClientConnection(reply_pause=0.5))
    assert chat.client.next_deadline() == NOW + 0.5
    chat.client.handle_timer(now=NOW + 0.5)
    assert chat.client.events_received() == [chat.reply_ended()]
    assert chat.client.next_deadline() is None


# Which errors are worth connecting again for.


ERRORS: Final[list[tuple[Callable[[], BlackBoxError], bool]]] = [
    (lambda: BlackBoxError("x"), False),
    (lambda: LocalProtocolError("x"), False),
    (lambda: RemoteProtocolError("x"), False),
    (lambda: InvalidMessage("bad"), False),
    (lambda: ProtocolTimeout("event connection", 10.0), True),
    (lambda: ConnectError("refused"), True),
    (lambda: ConnectError("unavailable", status=503), True),
    (lambda: ConnectError("internal", status=500), True),
    (lambda: ConnectError("forbidden", status=403), False),
    (lambda: ConnectError("not found", status=404), False),
    (lambda: DisconnectedError(1011, "restarting"), True),
    (lambda: DisconnectedError(None, ""), True),
    (lambda: MediaError("x"), False),
    (lambda: MediaNotConnected("no audio", seconds=5.0), False),
    (lambda: NoReply("ended first"), False),
    (lambda: ReplyTimeout(3.0), False),
    (lambda: ServiceError("x"), False),
    (lambda: AuthenticationError("Invalid token"), False),
    (lambda: ConfigurationError("Origin not allowed"), False),
    (lambda: ClientBugError("Too large message"), False),
]


@pytest.mark.parametrize(("make", "retryable"), ERRORS)
def test_retryable_says_whether_connecting_again_may_succeed(
    make: Callable[[], BlackBoxError], retryable: bool
) -> None:
    error = make()
    assert error.retryable is retryable


def test_a_connect_error_keeps_its_status() -> None:
    assert ConnectError("refused").status is None
    assert ConnectError("forbidden", status=403).status == 403


def test_a_reply_timeout_is_a_timeout_and_a_no_reply() -> None:
    error = ReplyTimeout(2.5)
    assert isinstance(error, NoReply)
    assert isinstance(error, TimeoutError)
    assert error.seconds == 2.5
    assert str(error) == "no reply ended within 2.5 s"
