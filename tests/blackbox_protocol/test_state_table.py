"""Totality of the transition table, checked against real connections (as h2 does).

For every lifecycle, every state and every input, the table either lists a
target state or the input is an error there. Each (state, input) pair is
checked by bringing a real ``ClientConnection`` and ``ServerConnection`` into
that state (a breadth-first search over the table, performed with real
commands and frames) and then applying the input: the app's command on the
sending end, a valid frame on the receiving end, the timer, or the close.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from itertools import count

import pytest
from blackbox_protocol import (
    AnswerReceived,
    CallType,
    ChatMessageReceived,
    ClientBugError,
    ClientConnection,
    Connected,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    EventReceived,
    InitializeReceived,
    LocalProtocolError,
    OfferReceived,
    ProtocolTimeout,
    ProtocolViolation,
    ServerConnection,
    TerminateReceived,
    TextReceived,
    ToolLogReceived,
    ToolRequested,
    ToolResponseReceived,
    UnknownMessageReceived,
    encode,
)
from blackbox_protocol._state import (
    AWAITED,
    CLEAN_CLOSE,
    CROSSED,
    INPUT_BY_TYPE,
    SENDER,
    TABLES,
    ConnectionState,
    Input,
    Lifecycle,
    Role,
)
from blackbox_protocol.events import Event as AppEvent
from blackbox_protocol.messages import (
    MESSAGE_CLASSES,
    ConversationResult,
    ConversationResultData,
    Error,
    ErrorData,
    EventData,
    IncomingChatMessage,
    Initialize,
    InitializeRequest,
    SdpAnswer,
    SdpAnswerData,
    SdpInvite,
    SdpInviteData,
    Terminate,
    Text,
    TextContent,
    ToolCall,
    ToolRequestContent,
    ToolResponseContent,
    UnknownMessage,
    WebsocketToolRequest,
    WebsocketToolResponse,
)
from blackbox_protocol.messages import Event as EventMessage

from tests.blackbox_protocol._turns import without_turns

S = ConnectionState
START = 1_700_000_000.0
OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/SAVP 0\r\n"
ANSWER_SDP = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/SAVP 0\r\n"
#: A different offer than ``OFFER_SDP``: a renegotiation once that one was made.
NEW_OFFER_SDP = OFFER_SDP.replace("o=- 1 1", "o=- 1 2")
#: The inputs an ``sdpInvite`` is, told apart by the offers before it.
LATER_OFFERS = frozenset({Input.REPEATED_OFFER, Input.NEW_OFFER})
CALL_TYPE = {Lifecycle.CHAT: CallType.CHAT, Lifecycle.VOICE: CallType.WEB_CALL}
#: The inputs that are messages on the wire (the others: unknown, timeout, close).
MESSAGE_INPUTS = frozenset(Input) - {Input.UNKNOWN, Input.TIMEOUT, Input.CLOSE}
#: What the receiving end reports for each allowed input.
RECEIVED_EVENT: Mapping[Input, type[AppEvent]] = {
    Input.INITIALIZE: InitializeReceived,
    Input.SESSION_READY: Connected,
    Input.EVENT: EventReceived,
    Input.TEXT: TextReceived,
    Input.CHAT_MESSAGE: ChatMessageReceived,
    Input.OFFER: OfferReceived,
    Input.REPEATED_OFFER: ProtocolViolation,
    Input.NEW_OFFER: ConversationFailed,
    Input.ANSWER: AnswerReceived,
    Input.TOOL_REQUEST: ToolRequested,
    Input.TOOL_RESPONSE: ToolResponseReceived,
    Input.TOOL_LOG: ToolLogReceived,
    Input.TERMINATE: TerminateReceived,
    Input.RESULT: ConversationEnded,
    Input.ERROR: ConversationFailed,
    Input.UNKNOWN: UnknownMessageReceived,
}


def reported(key: Input, target: ConnectionState) -> type[AppEvent]:
    """The event for an allowed input: a fatal one (an error, a second offer) is the failure."""
    return ConversationFailed if target is S.FAILED else RECEIVED_EVENT[key]


def possible(path: Sequence[Input], key: Input) -> bool:
    """Whether ``key`` can happen after ``path``: an offer is the first, or a later one."""
    offered = Input.OFFER in path
    return offered if key in LATER_OFFERS else not (key is Input.OFFER and offered)


def other(role: Role) -> Role:
    return Role.SERVER if role is Role.CLIENT else Role.CLIENT


def table_reachable(lifecycle: Lifecycle) -> dict[ConnectionState, list[Input]]:
    """The states the table alone reaches from the start, with a shortest path to each."""
    paths: dict[ConnectionState, list[Input]] = {S.AWAITING_INITIALIZE: []}
    queue = deque([S.AWAITING_INITIALIZE])
    while queue:
        state = queue.popleft()
        for key, target in TABLES[lifecycle][state].items():
            if target not in paths and possible(paths[state], key):
                paths[target] = [*paths[state], key]
                queue.append(target)
    return paths


class Link:
    """A client and a server joined by an in-memory, in-order, lossless link."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.now = START
        self.client = ClientConnection(
            session_timeout=10.0, offer_timeout=20.0, terminate_timeout=5.0, tool_timeout=30.0
        )
        self.server = ServerConnection(now=self.now, initialize_timeout=15.0)
        self.tool_ids = count(1)
        self.last_tool_id: str | None = None

    def end(self, role: Role) -> ClientConnection | ServerConnection:
        return self.client if role is Role.CLIENT else self.server

    def peer(self, role: Role) -> ClientConnection | ServerConnection:
        return self.server if role is Role.CLIENT else self.client

    def flush(self) -> None:
        """Deliver every queued frame, both ways, until the link is quiet."""
        while True:
            to_server = self.client.frames_to_send()
            to_client = self.server.frames_to_send()
            if not to_server and not to_client:
                return
            for frame in to_server:
                self.server.receive_frame(frame, now=self.now)
            for frame in to_client:
                self.client.receive_frame(frame, now=self.now)

    def drain_events(self) -> None:
        self.client.events_received()
        self.server.events_received()

    def command(self, key: Input) -> Callable[[], None] | None:
        """The app command that sends ``key`` from its sender, or None when there is none."""
        now = self.now
        commands: dict[Input, Callable[[], None]] = {
            Input.INITIALIZE: lambda: self.client.initialize(CALL_TYPE[self.lifecycle], now=now),
            Input.CHAT_MESSAGE: lambda: self.client.send_text("hello", now=now),
            Input.ANSWER: lambda: self.client.answer(ANSWER_SDP, now=now),
            Input.TOOL_RESPONSE: lambda: self.client.reply_to_tool(
                self.last_tool_id or "never-requested", {"ok": True}, now=now
            ),
            Input.TERMINATE: lambda: self.client.terminate(now=now),
            Input.SESSION_READY: lambda: self.server.accept(job_id="job-1", now=now),
            Input.EVENT: lambda: self.server.send_event("opened", {"at": 1}, now=now),
            Input.TEXT: lambda: self.server.send_text("Hi there", now=now),
            Input.OFFER: lambda: self.server.offer(OFFER_SDP, now=now),
            Input.REPEATED_OFFER: lambda: self.server.offer(OFFER_SDP, now=now),
            Input.NEW_OFFER: lambda: self.server.offer(NEW_OFFER_SDP, now=now),
            Input.TOOL_REQUEST: self._request_tool,
            Input.RESULT: lambda: self.server.end(now=now),
            Input.ERROR: lambda: self.server.send_error("Invalid token", now=now),
        }
        return commands.get(key)

    def _request_tool(self) -> None:
        tool_id = f"tool-{next(self.tool_ids)}"
        self.server.request_tool(tool_id, "lookup", {"q": 1}, now=self.now)
        self.last_tool_id = tool_id

    def frame(self, key: Input) -> str:
        """A valid frame of the input ``key``."""
        tool_id = self.last_tool_id or "never-requested"
        messages = {
            Input.INITIALIZE: Initialize(
                request=InitializeRequest(call_type=CALL_TYPE[self.lifecycle])
            ),
            Input.SESSION_READY: EventMessage(name="connection", data=EventData(job_id="j")),
            Input.EVENT: EventMessage(name="opened"),
            Input.TEXT: Text(content=TextContent(source="assistant", text="Hi")),
            Input.CHAT_MESSAGE: IncomingChatMessage(content="hello"),
            Input.OFFER: SdpInvite(data=SdpInviteData(invite=OFFER_SDP)),
            Input.REPEATED_OFFER: SdpInvite(data=SdpInviteData(sdp_offer=OFFER_SDP)),
            Input.NEW_OFFER: SdpInvite(data=SdpInviteData(invite=NEW_OFFER_SDP)),
            Input.ANSWER: SdpAnswer(data=SdpAnswerData(sdp_answer=ANSWER_SDP)),
            Input.TOOL_REQUEST: WebsocketToolRequest(
                content=ToolRequestContent(id="fed-tool", tool_name="lookup", args={})
            ),
            Input.TOOL_RESPONSE: WebsocketToolResponse(
                content=ToolResponseContent(id=tool_id, result=[1, 2])
            ),
            Input.TOOL_LOG: ToolCall(extra={"toolName": "lookup"}),
            Input.TERMINATE: Terminate(),
            Input.RESULT: ConversationResult(result=ConversationResultData(status="Completed")),
            Input.ERROR: Error(data=ErrorData(message="Invalid token")),
            Input.UNKNOWN: UnknownMessage(unknown_type="brandNewType", extra={"x": 1}),
        }
        return encode(messages[key], now=self.now)

    def perform(self, key: Input) -> None:
        """Make ``key`` happen to both ends as it would on a healthy link."""
        if key is Input.CLOSE:
            self.client.receive_close(1000)
            self.server.receive_close(1000)
        else:
            if key is Input.TOOL_RESPONSE:
                # A reply needs a request: the server asks first (the state does not move).
                self._request_tool()
                self.flush()
            command = self.command(key)
            assert command is not None, key
            command()
            self.flush()
        self.drain_events()

    def prepare_tool(self, state: ConnectionState) -> None:
        """Leave a tool request pending on the client, if the state allows one."""
        if Input.TOOL_REQUEST in TABLES[self.lifecycle][state]:
            self._request_tool()
            self.flush()
            self.drain_events()
            assert self.last_tool_id in self.client.pending_tool_ids


def link_in(lifecycle: Lifecycle, state: ConnectionState) -> Link:
    """A fresh link whose two ends are both in ``state``, reached with real traffic."""
    link = Link(lifecycle)
    for key in live_reachable(lifecycle)[state]:
        link.perform(key)
    assert (link.client.state, link.server.state) == (state, state)
    return link


@cache
def live_reachable(lifecycle: Lifecycle) -> dict[ConnectionState, list[Input]]:
    """The states real connections reach, exploring the table's inputs breadth-first."""
    paths: dict[ConnectionState, list[Input]] = {S.AWAITING_INITIALIZE: []}
    queue = deque([S.AWAITING_INITIALIZE])
    while queue:
        state = queue.popleft()
        for key in TABLES[lifecycle][state]:
            if (
                key in (Input.TIMEOUT, Input.UNKNOWN)
                or not possible(paths[state], key)
                or (key is not Input.CLOSE and Link(lifecycle).command(key) is None)
            ):
                continue
            link = Link(lifecycle)
            for step in paths[state]:
                link.perform(step)
            link.perform(key)
            assert link.client.state is link.server.state, (state, key)
            reached = link.client.state
            if reached not in paths:
                paths[reached] = [*paths[state], key]
                queue.append(reached)
    return paths


#: What the table alone reaches (the real connections must reach the same).
PATHS: Mapping[Lifecycle, Mapping[ConnectionState, Sequence[Input]]] = {
    lifecycle: table_reachable(lifecycle) for lifecycle in Lifecycle
}
REACHABLE = [(lc, state) for lc in Lifecycle for state in S if state in PATHS[lc]]
UNREACHABLE = [(lc, state) for lc in Lifecycle for state in S if state not in PATHS[lc]]


#: The inputs an app command sends (the server app never sends the tool logs).
COMMANDED = [key for key in Input if key in SENDER and key is not Input.TOOL_LOG]


def cases(
    keys: Iterable[Input], *, impossible: bool = False
) -> list[tuple[Lifecycle, ConnectionState, Input]]:
    """Each reachable state with each key (with ``impossible``, also those its path rules out)."""
    return [
        (lc, state, key)
        for lc, state in REACHABLE
        for key in keys
        if impossible or possible(PATHS[lc][state], key)
    ]


def case_id(value: object) -> str:
    return value.value.replace(" ", "-") if isinstance(value, Lifecycle | S | Input) else ""


# Structure of the table.


@pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=case_id)
def test_every_state_has_a_row(lifecycle: Lifecycle) -> None:
    assert set(TABLES[lifecycle]) == set(S)
    for row in TABLES[lifecycle].values():
        assert set(row) <= set(Input)
        assert all(isinstance(target, S) for target in row.values())


@pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=case_id)
def test_close_is_listed_everywhere_but_closed(lifecycle: Lifecycle) -> None:
    for state, row in TABLES[lifecycle].items():
        if state is S.CLOSED:
            assert row == {}
        else:
            assert row[Input.CLOSE] is S.CLOSED, state


@pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=case_id)
def test_awaited_states_time_out_to_failed(lifecycle: Lifecycle) -> None:
    for state, row in TABLES[lifecycle].items():
        if state in AWAITED and state in PATHS[lifecycle]:
            assert row[Input.TIMEOUT] is S.FAILED, state
        else:
            # No deadline is ever set there, so no timeout can happen.
            assert Input.TIMEOUT not in row, state


def test_sender_covers_every_message_input() -> None:
    assert set(SENDER) == MESSAGE_INPUTS
    assert {Role.CLIENT, Role.SERVER} == set(SENDER.values())


def test_every_wire_type_is_an_input() -> None:
    assert set(INPUT_BY_TYPE) == set(MESSAGE_CLASSES)
    derived = {Input.SESSION_READY, *LATER_OFFERS}
    assert set(INPUT_BY_TYPE.values()) | derived == MESSAGE_INPUTS


@pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=case_id)
def test_what_crossed_is_never_also_in_the_row(lifecycle: Lifecycle) -> None:
    for state, crossed in CROSSED[lifecycle].items():
        assert not crossed & set(TABLES[lifecycle][state]), state
        assert state not in (S.FAILED, S.CLOSED) or not crossed, state


def test_clean_close_states_are_the_ends_of_a_conversation() -> None:
    assert {S.TERMINATING, S.ENDED, S.FAILED} == CLEAN_CLOSE
    for lifecycle in Lifecycle:
        assert set(PATHS[lifecycle]) >= CLEAN_CLOSE


def test_media_states_are_unreachable_in_chat() -> None:
    assert {state for lc, state in UNREACHABLE if lc is Lifecycle.CHAT} == {
        S.AWAITING_OFFER,
        S.ANSWERING,
    }
    assert not [state for lc, state in UNREACHABLE if lc is Lifecycle.VOICE]


@pytest.mark.parametrize(("lifecycle", "state"), UNREACHABLE, ids=case_id)
def test_unreachable_states_only_close(lifecycle: Lifecycle, state: ConnectionState) -> None:
    assert TABLES[lifecycle][state] == {Input.CLOSE: S.CLOSED}


@pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=case_id)
def test_real_connections_reach_what_the_table_reaches(lifecycle: Lifecycle) -> None:
    assert set(live_reachable(lifecycle)) == set(PATHS[lifecycle])


# Every (state, input), on real connections.


def new_violations(events: list[AppEvent]) -> list[ProtocolViolation]:
    return [event for event in events if isinstance(event, ProtocolViolation)]


def test_every_message_but_the_tool_logs_has_a_command() -> None:
    link = Link(Lifecycle.CHAT)
    assert [key for key in Input if link.command(key) is not None] == COMMANDED
    assert set(COMMANDED) == set(SENDER) - {Input.TOOL_LOG}


@pytest.mark.parametrize(("lifecycle", "state", "key"), cases(COMMANDED), ids=case_id)
def test_local_command(lifecycle: Lifecycle, state: ConnectionState, key: Input) -> None:
    """The sender's command moves both ends to the target, or raises and changes nothing."""
    link = link_in(lifecycle, state)
    sender = SENDER[key]
    if key is Input.TOOL_RESPONSE:
        link.prepare_tool(state)
    command = link.command(key)
    assert command is not None
    local, peer = link.end(sender), link.peer(sender)
    target = TABLES[lifecycle][state].get(key)
    if target is None:
        with pytest.raises(LocalProtocolError):
            command()
        assert local.state is state
        assert local.frames_to_send() == []
        assert without_turns(local.events_received()) == []
        return
    command()
    assert local.state is target
    frames = local.frames_to_send()
    assert len(frames) == 1
    peer.receive_frame(frames[0], now=link.now)
    assert peer.state is target
    events = without_turns(peer.events_received())
    assert [type(event) for event in events] == [reported(key, target)]


@pytest.mark.parametrize(("lifecycle", "state", "key"), cases(RECEIVED_EVENT), ids=case_id)
def test_received_frame(lifecycle: Lifecycle, state: ConnectionState, key: Input) -> None:
    """A valid frame moves the receiver to the target, or is a reported violation."""
    link = link_in(lifecycle, state)
    if key is Input.TOOL_RESPONSE:
        link.prepare_tool(state)
    receivers = [Role.CLIENT, Role.SERVER] if key is Input.UNKNOWN else [other(SENDER[key])]
    for role in receivers:
        receiver = link.end(role)
        frame = link.frame(key)
        if state is S.CLOSED:
            with pytest.raises(LocalProtocolError):
                receiver.receive_frame(frame, now=link.now)
            continue
        receiver.receive_frame(frame, now=link.now)
        events = without_turns(receiver.events_received())
        frames = receiver.frames_to_send()
        target = TABLES[lifecycle][state].get(key)
        if state is S.FAILED:
            # After FAILED received frames are ignored.
            assert (receiver.state, events, frames) == (S.FAILED, [], [])
        elif target is not None:
            assert receiver.state is target
            assert [type(event) for event in events] == [reported(key, target)]
            assert frames == []
        elif key in CROSSED[lifecycle][state]:
            # It crossed this end's own message on the wire: no news, no word.
            assert (receiver.state, events, frames) == (state, [], [])
        elif role is Role.SERVER and key is Input.INITIALIZE:
            # The service's rule: a second initialize is answered with an error.
            assert new_violations(events)
            if Input.ERROR in TABLES[lifecycle][state]:
                assert receiver.state is S.FAILED
                assert len(frames) == 1
                assert '"message":"Multiple init messages received"' in frames[0]
                failed = [e for e in events if isinstance(e, ConversationFailed)]
                assert [type(e.error) for e in failed] == [ClientBugError]
            else:
                assert receiver.state is state
                assert frames == []
        else:
            assert receiver.state is state
            assert [type(event) for event in events] == [ProtocolViolation]
            assert frames == []


@pytest.mark.parametrize(("lifecycle", "state", "key"), cases(SENDER, impossible=True), ids=case_id)
def test_frame_in_the_wrong_direction(
    lifecycle: Lifecycle, state: ConnectionState, key: Input
) -> None:
    """A message an end itself sends is a violation when it receives one, in any state."""
    link = link_in(lifecycle, state)
    own = link.end(SENDER[key])
    frame = link.frame(key)
    if state is S.CLOSED:
        with pytest.raises(LocalProtocolError):
            own.receive_frame(frame, now=link.now)
        return
    own.receive_frame(frame, now=link.now)
    events = without_turns(own.events_received())
    assert own.state is state
    assert own.frames_to_send() == []
    if state is S.FAILED:
        assert events == []
    else:
        [violation] = events
        assert isinstance(violation, ProtocolViolation)
        assert "not to one" in violation.reason


@pytest.mark.parametrize(("lifecycle", "state"), REACHABLE, ids=case_id)
def test_timeout(lifecycle: Lifecycle, state: ConnectionState) -> None:
    """A deadline passing fails an awaited state, on the end that set one; elsewhere, nothing."""
    link = link_in(lifecycle, state)
    row = TABLES[lifecycle][state]
    for role, timed in ((Role.CLIENT, CLIENT_TIMED), (Role.SERVER, SERVER_TIMED)):
        check_timeout(link.end(role), state, row, has_timer=state in timed)


@pytest.mark.parametrize(("lifecycle", "state"), REACHABLE, ids=case_id)
def test_close(lifecycle: Lifecycle, state: ConnectionState) -> None:
    """The close always leads to CLOSED; it is a failure outside the clean-close states."""
    link = link_in(lifecycle, state)
    row = TABLES[lifecycle][state]
    for role in Role:
        check_close(link.end(role), state, row)


CLIENT_TIMED = frozenset({S.AWAITING_SESSION, S.AWAITING_OFFER, S.TERMINATING})
SERVER_TIMED = frozenset({S.AWAITING_INITIALIZE})


def check_close(
    end: ClientConnection | ServerConnection,
    state: ConnectionState,
    row: Mapping[Input, ConnectionState],
) -> None:
    if state is S.CLOSED:
        with pytest.raises(LocalProtocolError):
            end.receive_close(1000)
        assert end.state is S.CLOSED
        return
    end.receive_close(1000)
    assert end.state is row[Input.CLOSE] is S.CLOSED
    events = without_turns(end.events_received())
    assert isinstance(events[-1], ConnectionClosed)
    assert [type(e) for e in events[:-1]] == ([] if state in CLEAN_CLOSE else [ConversationFailed])
    assert end.next_deadline() is None


def check_timeout(
    end: ClientConnection | ServerConnection,
    state: ConnectionState,
    row: Mapping[Input, ConnectionState],
    *,
    has_timer: bool,
) -> None:
    deadline = end.next_deadline()
    if not has_timer:
        assert deadline is None
        end.handle_timer(now=START + 10_000.0)
        assert end.state is state
        assert without_turns(end.events_received()) == []
        assert end.frames_to_send() == []
        return
    assert state in AWAITED
    assert deadline is not None
    end.handle_timer(now=deadline - 0.001)
    assert end.state is state
    end.handle_timer(now=deadline)
    assert end.state is row[Input.TIMEOUT] is S.FAILED
    failed = [e for e in end.events_received() if isinstance(e, ConversationFailed)]
    assert len(failed) == 1
    if isinstance(end, ServerConnection):
        # The service answers a missing initialize with its documented error.
        [frame] = end.frames_to_send()
        assert '"message":"Init message not received"' in frame
        assert isinstance(failed[0].error, ClientBugError)
    else:
        assert isinstance(failed[0].error, ProtocolTimeout)
        assert failed[0].error.waiting_for == AWAITED[state]
        assert end.frames_to_send() == []
    assert end.next_deadline() is None
