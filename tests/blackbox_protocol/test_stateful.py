"""A client and a server driven against each other by Hypothesis, with a faulty link.

The machine plays both apps (every command, in any order, allowed or not), the
link (frames in flight both ways, delivered in order) and its faults (drop,
duplicate, reorder, corrupt), the clock and the socket's close. Invariants are
checked after every step; see ``ConversationMachine``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import count
from typing import Any, ClassVar

import pytest
from blackbox_protocol import (
    CallType,
    ClientConnection,
    ConnectionClosed,
    ConversationFailed,
    LocalProtocolError,
    OfferReceived,
    ProtocolTimeout,
    ProtocolViolation,
    ServerConnection,
    ToolRequested,
    encode,
)
from blackbox_protocol._state import ConnectionState, Lifecycle, Role
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
    Message,
    SdpAnswer,
    SdpAnswerData,
    SdpInvite,
    SdpInviteData,
    Terminate,
    Text,
    TextContent,
    ToolCallResult,
    ToolRequestContent,
    ToolResponseContent,
    WebsocketToolRequest,
    WebsocketToolResponse,
)
from blackbox_protocol.messages import Event as EventMessage
from hypothesis import HealthCheck, event, seed, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests._hypothesis import examples
from tests.blackbox_protocol._links import REACHABLE

S = ConnectionState
START = 1_700_000_000.0
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0 8\r\n"
#: Another offer: a renegotiation once ``SDP`` was offered (or the first offer).
NEW_SDP = SDP.replace("o=- 1 1", "o=- 1 3")
#: What the client says of the offer sent again: the only violation a healthy link shows.
REPEATED_OFFER = "the offer again (the same SDP): ignored, it is answered once"
LIFECYCLE = {
    CallType.CHAT: Lifecycle.CHAT,
    CallType.ON_PHONE: Lifecycle.CHAT,
    CallType.WEB_CALL: Lifecycle.VOICE,
}
#: States in which no tool request can be answered any more.
OVER = frozenset({S.ENDED, S.FAILED, S.CLOSED})
ERROR_TEXTS = [
    "Missing token",
    "Invalid token",
    "Web integration is not enabled",
    "Origin not allowed",
    "Init message not received",
    "Multiple init messages received",
    "Too large message",
    "Something nobody documented",
]
WIRE_TYPES = [*sorted(MESSAGE_CLASSES), "brandNewType"]


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

#: Valid frames of every kind, either direction, that a corruption may forge.
FORGED: list[Message] = [
    Initialize(request=InitializeRequest(call_type="webCall")),
    Initialize(request=InitializeRequest(call_type="chat")),
    IncomingChatMessage(content="forged"),
    SdpAnswer(data=SdpAnswerData(sdp_answer=SDP)),
    WebsocketToolResponse(content=ToolResponseContent(id="tool-1", result=None)),
    Terminate(),
    EventMessage(name="connection", data=EventData(record_id="r")),
    EventMessage(name="closed"),
    Text(content=TextContent(source="user", text="echo")),
    SdpInvite(data=SdpInviteData(sdp_offer=SDP)),
    WebsocketToolRequest(content=ToolRequestContent(id="tool-1", tool_name="x")),
    ToolCallResult(extra={"ok": True}),
    ConversationResult(result=ConversationResultData(status="Failed")),
    Error(data=ErrorData(message="Invalid token")),
]

#: How many runs of the machine saw the client in each (lifecycle, state).
REACHED: Counter[tuple[Lifecycle, ConnectionState]] = Counter()


def note_event(text: str) -> None:
    """Tally ``text`` in Hypothesis' statistics (the replayed examples run outside it)."""
    if currently_in_test_context():
        event(text)


def json_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path to a key of a nested JSON object."""
    paths: list[tuple[str, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            paths.append((*prefix, key))
            paths.extend(json_paths(item, (*prefix, key)))
    return paths


def as_object(frame: str) -> dict[str, Any] | None:
    try:
        value = json.loads(frame)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def corrupt(frame: str | bytes, data: st.DataObject) -> str | bytes:
    """A damaged copy of ``frame``: broken text, binary, or JSON of the wrong shape."""
    if isinstance(frame, bytes):
        return frame.decode("utf-8", "replace")
    value = as_object(frame)
    kinds = ["truncate", "splice", "binary", "garbage", "forge"]
    if value is not None:
        kinds += ["retype", "delete", "replace"]
    kind = data.draw(st.sampled_from(kinds), label="corruption")
    note_event(f"corruption: {kind}")
    if kind == "truncate":
        return frame[: data.draw(st.integers(0, max(len(frame) - 1, 0)), label="kept")]
    if kind == "splice":
        at = data.draw(st.integers(0, len(frame)), label="at")
        return frame[:at] + data.draw(st.text(min_size=1, max_size=3)) + frame[at + 1 :]
    if kind == "binary":
        return frame.encode()
    if kind == "garbage":
        return data.draw(st.text(max_size=30) | json_values.map(json.dumps), label="garbage")
    if kind == "forge":
        return encode(data.draw(st.sampled_from(FORGED), label="forged"), now=START)
    assert value is not None
    paths = json_paths(value)
    if kind == "retype" or not paths:
        value["type"] = data.draw(st.sampled_from(WIRE_TYPES), label="type")
        return json.dumps(value)
    path = data.draw(st.sampled_from(paths), label="path")
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    if kind == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values, label="value")
    return json.dumps(value)


class ConversationMachine(RuleBasedStateMachine):
    """Both ends of one conversation, the link between them and its faults.

    Invariants, after every step:

    (a) once the link has drained and no fault was injected (and no client-side
        timeout fired, which no frame tells the server about), both ends are
        in the same state;
    (b) an end that emitted ``ConnectionClosed`` emits nothing more, and its
        commands raise ``LocalProtocolError``;
    (c) every tool request is answered at most once, and while the
        conversation is alive every request the client saw is either pending
        or answered exactly once; once it is over, none is pending;
    (d) ``receive_frame`` never raises for a delivered frame, however damaged;
    (e) each end's state is one its lifecycle can reach;
    (f) with no fault injected, neither end reports a violation, but the
        client for an offer sent again: messages that cross are no violation.
    """

    #: The call types a run picks from.
    CALL_TYPES: ClassVar[Sequence[CallType]] = tuple(CallType)

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.client = ClientConnection(
            session_timeout=5.0, offer_timeout=5.0, terminate_timeout=3.0, tool_timeout=4.0
        )
        self.server = ServerConnection(now=self.now, initialize_timeout=6.0)
        self.to_server: list[str | bytes] = []
        self.to_client: list[str | bytes] = []
        self.faulty = False
        self.diverged = False
        self.closed: set[Role] = set()
        self.lifecycle = Lifecycle.CHAT
        self.offers: list[str] = []
        self.tools_seen: list[str] = []
        self.tools_requested: list[str] = []
        self.responses: Counter[str] = Counter()
        self.tool_numbers = count(1)
        self.reached: set[tuple[Lifecycle, ConnectionState]] = set()
        self.violations: list[str] = []

    # Plumbing.

    def end(self, role: Role) -> ClientConnection | ServerConnection:
        return self.client if role is Role.CLIENT else self.server

    def collect(self) -> None:
        """Move both ends' outputs onto the link, checking (b) and recording (c)."""
        for role, outbox in ((Role.CLIENT, self.to_server), (Role.SERVER, self.to_client)):
            end = self.end(role)
            frames, events = end.frames_to_send(), end.events_received()
            if role in self.closed:
                assert frames == [], f"{role.value} sent frames after close"
                assert events == [], f"{role.value} emitted events after close"
                continue
            for position, app_event in enumerate(events):
                if isinstance(app_event, ConnectionClosed):
                    assert position == len(events) - 1, "ConnectionClosed is not the last event"
                    self.closed.add(role)
                elif isinstance(app_event, ProtocolViolation):
                    self.violations.append(app_event.reason)
            outbox.extend(frames)
            if role is Role.CLIENT:
                self.client_sent(frames)
                self.client_saw(events)
        # Every state the client passes through, not only where a rule leaves it:
        # one ``progress`` can take a call from awaiting the session to answering.
        self.reached.add((self.lifecycle, self.client.state))

    def client_sent(self, frames: list[str]) -> None:
        for frame in frames:
            message = json.loads(frame)
            if message["type"] == "websocketToolResponse":
                tool_id = message["content"]["id"]
                self.responses[tool_id] += 1
                assert self.responses[tool_id] == 1, f"two responses to tool {tool_id!r}"

    def client_saw(self, events: list[AppEvent]) -> None:
        for app_event in events:
            if isinstance(app_event, ToolRequested):
                self.tools_seen.append(app_event.id)
            elif isinstance(app_event, OfferReceived):
                self.offers.append(app_event.sdp)
            elif isinstance(app_event, ConversationFailed) and isinstance(
                app_event.error, ProtocolTimeout
            ):
                self.diverged = True

    def command(self, role: Role, action: Callable[[], object], *, must_fail: bool = False) -> None:
        """Run an app command: it succeeds, or raises and changes nothing."""
        end = self.end(role)
        before = end.state
        deadline = end.next_deadline()
        try:
            action()
        except LocalProtocolError:
            assert end.state is before
            assert end.next_deadline() == deadline
            assert end.frames_to_send() == []
            assert end.events_received() == []
            note_event(f"refused {role.value} command")
            return
        assert role not in self.closed, "a command succeeded after close"
        assert not must_fail, "a command that must fail succeeded"
        self.collect()

    def deliver(self, queue: list[str | bytes], role: Role) -> None:
        frame = queue.pop(0)
        self.end(role).receive_frame(frame, now=self.now)  # (d): never raises
        self.collect()

    def flush(self) -> None:
        """Deliver everything, both ways, until the link is quiet."""
        while self.to_server or self.to_client:
            if self.to_server:
                self.deliver(self.to_server, Role.SERVER)
            if self.to_client:
                self.deliver(self.to_client, Role.CLIENT)

    def healthy_step(self, *, finish: bool) -> None:
        """Drain the link, then take the next step of a healthy call, whoever's turn it is."""
        server, client = self.server, self.client
        self.flush()
        if server.state is S.AWAITING_SESSION:
            self.command(Role.SERVER, lambda: server.accept(job_id="job-2", now=self.now))
        elif server.state is S.AWAITING_OFFER:
            self.command(Role.SERVER, lambda: server.offer(SDP, now=self.now))
        elif client.state is S.ANSWERING:
            self.command(Role.CLIENT, lambda: client.answer(SDP, now=self.now))
        elif server.state is S.TERMINATING or (server.state is S.ACTIVE and finish):
            self.command(Role.SERVER, lambda: server.end(now=self.now))

    # Setup: a run starts at a random point of a healthy call, then chaos follows.

    @initialize(
        data=st.data(),
        healthy_steps=st.integers(0, 3),
        tools=st.integers(0, 2),
        ending=st.none() | st.sampled_from(["terminate", "end", "error", "close"]),
    )
    def start(
        self, data: st.DataObject, healthy_steps: int, tools: int, ending: str | None
    ) -> None:
        call_type = data.draw(st.sampled_from(self.CALL_TYPES), label="call type")
        self.begin(call_type, healthy_steps=healthy_steps, tools=tools, ending=ending)

    def begin(
        self, call_type: CallType, *, healthy_steps: int, tools: int, ending: str | None
    ) -> None:
        """What ``start`` does once the call type is drawn (the examples below call it)."""
        self.lifecycle = LIFECYCLE[call_type]
        self.client.initialize(call_type, additional_data={"name": "Ada"}, now=self.now)
        self.collect()
        for _ in range(healthy_steps):
            self.healthy_step(finish=False)
        for _ in range(tools):
            self.request_new_tool(args={})
        self.flush()
        if ending == "terminate":
            self.client_terminate()
        elif ending == "end":
            self.server_end("Completed")
        elif ending == "error":
            self.server_send_error("Invalid token")
        elif ending == "close":
            self.close_link(1006, "")
        self.flush()

    # The client app.

    @rule(text=st.text(max_size=12))
    def client_send_text(self, text: str) -> None:
        self.command(Role.CLIENT, lambda: self.client.send_text(text, now=self.now))

    @rule()
    def client_answer(self) -> None:
        sdp = self.offers[-1].replace("o=- 1 1", "o=- 2 2") if self.offers else SDP
        self.command(Role.CLIENT, lambda: self.client.answer(sdp, now=self.now))

    @precondition(lambda self: self.tools_seen)
    @rule(data=st.data(), fail=st.booleans(), result=json_values)
    def client_reply_to_tool(self, data: st.DataObject, fail: bool, result: Any) -> None:
        tool_id = data.draw(st.sampled_from(self.tools_seen), label="tool id")
        pending = tool_id in self.client.pending_tool_ids
        if fail:
            action: Callable[[], None] = lambda: self.client.fail_tool(  # noqa: E731
                tool_id, "it broke", now=self.now
            )
        else:
            action = lambda: self.client.reply_to_tool(tool_id, result, now=self.now)  # noqa: E731
        self.command(Role.CLIENT, action, must_fail=not pending)
        assert tool_id not in self.client.pending_tool_ids

    @rule()
    def client_terminate(self) -> None:
        self.command(Role.CLIENT, lambda: self.client.terminate(now=self.now))

    # The server app.

    @rule(job=st.booleans())
    def server_accept(self, job: bool) -> None:
        ids = {"job_id": "job-1"} if job else {"record_id": "rec-1"}
        self.command(Role.SERVER, lambda: self.server.accept(**ids, now=self.now))

    @rule(
        kind=st.sampled_from(["opened", "closed", "failedOpen", "assistant", "user"]),
        text=st.text(max_size=12),
        partial=st.booleans(),
    )
    def server_inform(self, kind: str, text: str, partial: bool) -> None:
        """An informational event or a transcript chunk."""
        server = self.server
        if kind in ("assistant", "user"):
            action: Callable[[], None] = lambda: server.send_text(  # noqa: E731
                text, source=kind, partial=partial, now=self.now
            )
        else:
            action = lambda: server.send_event(kind, {"n": 1}, now=self.now)  # noqa: E731
        self.command(Role.SERVER, action)

    @rule(documented=st.booleans(), sdp=st.sampled_from([SDP, NEW_SDP]))
    def server_offer(self, documented: bool, sdp: str = SDP) -> None:
        """An offer: the first, the same again, or a new one (a renegotiation)."""
        key: Any = "sdpOffer" if documented else "invite"
        self.command(Role.SERVER, lambda: self.server.offer(sdp, key=key, now=self.now))

    @rule(
        data=st.data(),
        reuse=st.booleans(),
        args=st.dictionaries(st.text(max_size=4), json_scalars, max_size=2),
    )
    def server_request_tool(
        self, data: st.DataObject, reuse: bool, args: Mapping[str, Any]
    ) -> None:
        if reuse and self.tools_requested:
            tool_id = data.draw(st.sampled_from(self.tools_requested), label="reused id")
            self.request_tool(tool_id, args, must_fail=True)
        else:
            self.request_new_tool(args)

    def request_new_tool(self, args: Mapping[str, Any]) -> None:
        self.request_tool(f"tool-{next(self.tool_numbers)}", args, must_fail=False)

    def request_tool(self, tool_id: str, args: Mapping[str, Any], *, must_fail: bool) -> None:
        def request() -> None:
            self.server.request_tool(tool_id, "lookup", args, now=self.now)
            self.tools_requested.append(tool_id)

        self.command(Role.SERVER, request, must_fail=must_fail)

    @rule(status=st.sampled_from(["Completed", "Failed", None]))
    def server_end(self, status: str | None) -> None:
        result = None if status is None else ConversationResultData(status=status)
        self.command(Role.SERVER, lambda: self.server.end(result, now=self.now))

    @rule(message=st.sampled_from(ERROR_TEXTS))
    def server_send_error(self, message: str) -> None:
        self.command(Role.SERVER, lambda: self.server.send_error(message, now=self.now))

    # The link, the clock and the socket.

    @precondition(lambda self: self.to_server)
    @rule()
    def deliver_to_server(self) -> None:
        self.deliver(self.to_server, Role.SERVER)

    @precondition(lambda self: self.to_client)
    @rule()
    def deliver_to_client(self) -> None:
        self.deliver(self.to_client, Role.CLIENT)

    @rule(steps=st.integers(1, 3), finish=st.booleans())
    def progress(self, steps: int, finish: bool) -> None:
        """Let the call run healthily for a few steps."""
        for _ in range(steps):
            self.healthy_step(finish=finish)
        self.flush()

    @precondition(lambda self: self.to_server or self.to_client)
    @rule(kind=st.sampled_from(["drop", "duplicate", "reorder", "corrupt"]), data=st.data())
    def inject_fault(self, kind: str, data: st.DataObject) -> None:
        self.faulty = True
        queue = data.draw(
            st.sampled_from([q for q in (self.to_server, self.to_client) if q]), label="queue"
        )
        index = data.draw(st.integers(0, len(queue) - 1), label="index")
        note_event(f"fault: {kind}")
        if kind == "drop":
            del queue[index]
        elif kind == "duplicate":
            queue.insert(index, queue[index])
        elif kind == "reorder":
            other = data.draw(st.integers(0, len(queue) - 1), label="swapped with")
            queue[index], queue[other] = queue[other], queue[index]
        else:
            queue[index] = corrupt(queue[index], data)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 4.0, 7.0]))
    def advance_time(self, seconds: float) -> None:
        self.now += seconds
        self.client.handle_timer(now=self.now)
        self.server.handle_timer(now=self.now)
        self.collect()

    @rule(code=st.sampled_from([None, 1000, 1006, 1007]), reason=st.sampled_from(["", "bye"]))
    def close_link(self, code: int | None, reason: str) -> None:
        """Close the socket; once closed, feeding either end anything raises."""
        if self.closed:
            for role in Role:
                end = self.end(role)
                with pytest.raises(LocalProtocolError):
                    end.receive_frame(encode(Terminate(), now=self.now), now=self.now)
                with pytest.raises(LocalProtocolError):
                    end.receive_close(code, reason)
        for role in Role:
            if role not in self.closed:
                self.end(role).receive_close(code, reason)
        self.to_server.clear()
        self.to_client.clear()
        self.collect()
        assert self.closed == {Role.CLIENT, Role.SERVER}

    def teardown(self) -> None:
        REACHED.update(self.reached)

    # Invariants.

    @invariant()
    def same_state_once_drained(self) -> None:
        if self.faulty or self.diverged or self.to_server or self.to_client:
            return
        assert self.client.state is self.server.state, (self.client.state, self.server.state)

    @invariant()
    def no_violation_without_a_fault(self) -> None:
        if not self.faulty:
            assert set(self.violations) <= {REPEATED_OFFER}, self.violations

    @invariant()
    def tools_answered_exactly_once(self) -> None:
        pending = self.client.pending_tool_ids
        assert pending <= set(self.tools_seen)
        if self.client.state in OVER:
            assert pending == frozenset(), f"tools {set(pending)} pending in {self.client.state}"
            return
        for tool_id in self.tools_seen:
            assert (tool_id in pending) != (self.responses[tool_id] == 1), tool_id

    @invariant()
    def states_are_reachable(self) -> None:
        server_lifecycle = Lifecycle.CHAT
        if self.server.call_type is not None:
            server_lifecycle = LIFECYCLE[self.server.call_type]
        assert self.client.state in REACHABLE[self.lifecycle]
        assert self.server.state in REACHABLE[server_lifecycle]
        self.reached.add((self.lifecycle, self.client.state))
        note_event(f"{self.lifecycle.value}: client {self.client.state.value}")

    @invariant()
    def closed_means_closed(self) -> None:
        for role in self.closed:
            end = self.end(role)
            assert end.state is S.CLOSED
            assert end.next_deadline() is None


class ChatConversation(ConversationMachine):
    CALL_TYPES = (CallType.CHAT, CallType.ON_PHONE)


class VoiceConversation(ConversationMachine):
    CALL_TYPES = (CallType.WEB_CALL,)


@seed(102)
class VoiceConversationOfSeed102(VoiceConversation):
    """Seed 102 once ran no voice conversation that was seen awaiting the offer.

    The states were sampled only between rules; they are now noted at every
    step. The seed stays, so that the case is run every time.
    """


#: The states every lifecycle's runs must have reached, so that the test cannot pass idle.
MUST_REACH = [S.ACTIVE, S.TERMINATING, S.ENDED, S.FAILED, S.CLOSED]


@pytest.mark.parametrize(
    ("machine", "lifecycle", "must_reach"),
    [
        (ChatConversation, Lifecycle.CHAT, MUST_REACH),
        (VoiceConversation, Lifecycle.VOICE, [S.AWAITING_OFFER, S.ANSWERING, *MUST_REACH]),
        (
            VoiceConversationOfSeed102,
            Lifecycle.VOICE,
            [S.AWAITING_OFFER, S.ANSWERING, *MUST_REACH],
        ),
    ],
    ids=["chat", "voice", "voice-seed-102"],
)
def test_conversations_keep_their_invariants(
    machine: type[ConversationMachine], lifecycle: Lifecycle, must_reach: list[ConnectionState]
) -> None:
    REACHED.clear()
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples(150),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    # The machine must really have run conversations, not just refused commands.
    assert {lc for lc, _ in REACHED} == {lifecycle}
    for state in must_reach:
        assert REACHED[lifecycle, state], f"no {lifecycle.value} run reached {state.value}"


# Failures Hypothesis found, kept as examples (a state machine takes no
# ``@example``): the steps it printed, replayed with every invariant checked.


def check_invariants(machine: ConversationMachine) -> None:
    machine.closed_means_closed()
    machine.same_state_once_drained()
    machine.states_are_reachable()
    machine.tools_answered_exactly_once()
    machine.no_violation_without_a_fault()


@pytest.mark.parametrize("sdp", [SDP, NEW_SDP], ids=["same-offer", "new-offer"])
@pytest.mark.parametrize("terminate_first", [True, False], ids=["seed-15", "seed-17"])
def test_a_terminate_crossing_a_second_offer(terminate_first: bool, sdp: str) -> None:
    """``--hypothesis-seed=15`` and ``17`` (of 2..21): the client was left
    terminating while the server had failed, after a second offer crossed the
    client's ``terminate`` in ``answering``."""
    machine = VoiceConversation()
    machine.begin(CallType.WEB_CALL, healthy_steps=2, tools=0, ending=None)
    check_invariants(machine)
    steps: list[Callable[[], None]] = [
        machine.client_terminate,
        lambda: machine.server_offer(documented=False, sdp=sdp),
    ]
    for step in steps if terminate_first else steps[::-1]:
        step()
        check_invariants(machine)
    machine.progress(finish=False, steps=1)
    check_invariants(machine)
    # The repeat changes nothing (the server then answers the terminate); a new offer fails both.
    expected = S.ENDED if sdp == SDP else S.FAILED
    assert (machine.client.state, machine.server.state) == (expected, expected)
    machine.teardown()
