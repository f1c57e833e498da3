"""Sans-IO connections: the client and server ends of one conversation.

A connection is fed what happened (a received frame, the socket's close, the
time) and is asked for what to do (frames to send, events for the app). It
does no I/O and reads no clock: every call that can create a frame or a
deadline takes ``now``, seconds on a clock that never goes backwards (a
driver passes ``time.monotonic()``). Deadlines and the turns' times are on
that clock. The frames' wire timestamps come from a separate wall clock,
``wall_clock`` (a driver passes ``time.time``); without one they are ``now``
itself, which is then POSIX seconds (as the tests pass it).

Rules, as in h11 and websockets:

- The app's commands (``initialize``, ``send_text``, ...) raise
  ``LocalProtocolError`` when the protocol does not allow them now, and then
  change nothing.
- Bad input from the peer never raises out of ``receive_frame``: it becomes a
  ``ProtocolViolation`` event (the state does not change) or, where the
  conversation cannot go on, a ``ConversationFailed`` event and the ``FAILED``
  state. After ``FAILED`` received frames are ignored; close the socket.
- ``receive_close`` ends everything; ``ConnectionClosed`` is the last event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Literal

from blackbox_protocol._codec import decode, encode, read_shallow
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
from blackbox_protocol.errors import (
    INIT_NOT_RECEIVED,
    MULTIPLE_INITS,
    TOO_LARGE,
    BlackBoxError,
    DisconnectedError,
    InvalidMessage,
    LocalProtocolError,
    ProtocolTimeout,
    RemoteProtocolError,
    service_error,
)
from blackbox_protocol.events import (
    AnswerReceived,
    ChatMessageReceived,
    Connected,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    EventReceived,
    InitializeReceived,
    OfferReceived,
    ProtocolViolation,
    TerminateReceived,
    TextReceived,
    ToolLogReceived,
    ToolRequested,
    ToolResponseReceived,
    ToolTimedOut,
    UnknownMessageReceived,
)
from blackbox_protocol.events import Event as AppEvent
from blackbox_protocol.messages import (
    MESSAGE_CLASSES,
    CallType,
    ConversationResult,
    ConversationResultData,
    Error,
    ErrorData,
    Event,
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
    ToolCall,
    ToolCallResult,
    ToolRequestContent,
    ToolResponseContent,
    UnknownMessage,
    WebsocketToolRequest,
    WebsocketToolResponse,
)
from blackbox_protocol.turns import DEFAULT_REPLY_PAUSE, Turn, TurnTracker

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_PENDING_TOOLS",
    "DEFAULT_MAX_SDP_SIZE",
    "ClientConnection",
    "ConnectionState",
    "ServerConnection",
    "parse_call_type",
]

#: Incoming frames up to 8 MiB: a long call's result can pass websockets' 1 MiB default.
DEFAULT_MAX_FRAME_SIZE: Final = 8 * 1024 * 1024
#: An SDP offer or answer is a few KiB; 64 KiB leaves room for many candidates.
DEFAULT_MAX_SDP_SIZE: Final = 64 * 1024
#: Tool requests awaiting the app's reply at once: a server sending more is
#: answered with an error result for each, so a flood cannot pile up work.
DEFAULT_MAX_PENDING_TOOLS: Final = 64
#: How many of the latest tool request ids are remembered to tell a repeat.
_REMEMBERED_TOOL_IDS: Final = 4096
#: How much of an offending frame a ``ProtocolViolation`` quotes.
_EXCERPT: Final = 200

#: The call types and the lifecycle each follows.
_LIFECYCLE: Final[Mapping[str, Lifecycle]] = {
    CallType.CHAT: Lifecycle.CHAT,
    CallType.ON_PHONE: Lifecycle.CHAT,
    CallType.WEB_CALL: Lifecycle.VOICE,
}


#: The input each message class is, looked up by class (``message.type`` is a property).
_INPUT_BY_CLASS: Final[Mapping[type[Message], Input]] = {
    cls: INPUT_BY_TYPE[tag] for tag, cls in MESSAGE_CLASSES.items()
}
_SESSION_READY: Final = Input.SESSION_READY
_UNKNOWN: Final = Input.UNKNOWN
#: States in which ``receive_frame`` does not look at the frame.
_DEAF: Final = frozenset({ConnectionState.CLOSED, ConnectionState.FAILED})
#: States in which the conversation is over but the socket is still open: close it.
_TO_CLOSE: Final = frozenset({ConnectionState.ENDED, ConnectionState.FAILED})


def _tool_id(frame: str) -> str | None:
    """The ``content.id`` of a refused ``websocketToolRequest`` frame, if it can be read."""
    if "websocketToolRequest" not in frame:
        return None
    value = read_shallow(frame)
    if not isinstance(value, dict) or value.get("type") != "websocketToolRequest":
        return None
    content = value.get("content")
    tool_id = content.get("id") if isinstance(content, dict) else None
    return tool_id if isinstance(tool_id, str) else None


def parse_call_type(call_type: CallType | str) -> CallType:
    """The ``CallType`` for ``call_type`` (``chat``, ``webCall`` or ``onPhone``).

    Raises:
        LocalProtocolError: not a call type the protocol has.
    """
    try:
        return CallType(call_type)
    except ValueError:
        raise LocalProtocolError(f"unknown call type {call_type!r}") from None


class _Connection:
    """What both ends share: the table walk, the outputs, the deadline, the close."""

    _role: ClassVar[Role]

    def __init__(
        self,
        *,
        timeouts: Mapping[ConnectionState, float],
        max_frame_size: int,
        max_sdp_size: int,
        wall_clock: Callable[[], float] | None,
    ) -> None:
        self._state = ConnectionState.AWAITING_INITIALIZE
        self._wall_clock = wall_clock
        self._lifecycle = Lifecycle.CHAT
        self._timeouts = timeouts
        self._max_frame_size = max_frame_size
        self._max_sdp_size = max_sdp_size
        self._deadline: float | None = None
        self._events: list[AppEvent] = []
        self._frames: list[str] = []
        self._error: BlackBoxError | None = None
        #: The conversation's first SDP offer, once made (sent, or received and taken).
        self._offer: str | None = None

    @property
    def state(self) -> ConnectionState:
        """The conversation's state."""
        return self._state

    @property
    def error(self) -> BlackBoxError | None:
        """Why the conversation failed, once it has (see ``ConversationFailed``)."""
        return self._error

    @property
    def should_close(self) -> bool:
        """Whether the conversation is over (ended or failed) and the socket should close now.

        Send what ``frames_to_send`` holds first (the result, an error frame),
        then close; ``receive_close`` once it has closed.
        """
        return self._state in _TO_CLOSE

    def events_received(self) -> list[AppEvent]:
        """Take the events produced since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def frames_to_send(self) -> list[str]:
        """Take the frames to send since the last call, in order."""
        frames, self._frames = self._frames, []
        return frames

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must next be called (POSIX seconds), or ``None``."""
        return self._deadline

    def handle_timer(self, *, now: float) -> None:
        """Act on every deadline that has passed by ``now``; early calls do nothing."""
        if self._deadline is not None and now >= self._deadline:
            waiting_for = AWAITED[self._state]
            self._timed_out(ProtocolTimeout(waiting_for, self._timeouts[self._state]), now)

    def receive_frame(self, frame: str | bytes, *, now: float) -> None:
        """Feed one received WebSocket frame (text, as the protocol sends).

        Never raises for bad input: see ``ProtocolViolation`` and ``ConversationFailed``.

        Raises:
            LocalProtocolError: the connection is already closed.
        """
        if self._state in _DEAF:
            if self._state is ConnectionState.CLOSED:
                raise LocalProtocolError("the connection is closed")
            return
        if not isinstance(frame, str):
            self._violated("binary frames are not part of the protocol", repr(frame[:_EXCERPT]))
            return
        if len(frame) > self._max_frame_size:
            reason = f"a frame of {len(frame)} characters is over the {self._max_frame_size} limit"
            self._oversized(reason, frame, now)
            return
        try:
            message = decode(frame)
        except InvalidMessage as exc:
            self._invalid(exc, frame, now)
            return
        received = self._input_of(message)
        if SENDER.get(received) is self._role:
            self._violated(f"{message.type} is sent by a {self._role.value}, not to one", frame)
            return
        target = self._row().get(received)
        if target is None:
            if received in CROSSED[self._lifecycle][self._state]:
                # It crossed this end's own message: no news, and no violation.
                # (A crossed offer is still the conversation's first.)
                self._took(received, message)
            else:
                self._unexpected(received, frame, now)
            return
        # A fatal message (an error, a new offer) is no news for the app:
        # ``_move`` reports it as the conversation's failure.
        if target is not ConnectionState.FAILED:
            try:
                refusal = self._accept(message, now)
            except RemoteProtocolError as error:
                # Valid, and awaited, but impossible to act on: nothing else can come.
                self._fail(error)
                return
            if refusal is not None:
                self._violated(refusal, frame)
                return
        self._took(received, message)
        self._move(target, received, message, now)

    def receive_close(self, code: int | None = None, reason: str = "") -> None:
        """Tell the connection its socket closed.

        Args:
            code: the close code, ``None`` when no close frame came (1006).
            reason: the close reason, if any.

        Raises:
            LocalProtocolError: the connection is already closed.
        """
        if self._state is ConnectionState.CLOSED:
            raise LocalProtocolError("the connection is already closed")
        if self._state not in CLEAN_CLOSE:
            self._fail(DisconnectedError(code, reason))
        self._state = ConnectionState.CLOSED
        self._deadline = None
        # A clean close in ``terminating`` can leave tool requests unanswered:
        # their deadlines must not outlive the socket.
        self._ended()
        self._events.append(ConnectionClosed(code, reason))

    # What the subclasses build on.

    def _send(self, message: Message, *, now: float) -> None:
        """Queue an app command's frame and move the state, or raise and change nothing."""
        sent = self._input_of(message)
        target = self._row().get(sent)
        if target is None:
            raise LocalProtocolError(f"cannot send {sent.value} in state {self._state.value}")
        stamp = now if self._wall_clock is None else self._wall_clock()
        self._frames.append(encode(message, now=stamp))
        self._took(sent, message)
        self._move(target, sent, message, now, sent=True)

    def _input_of(self, message: Message) -> Input:
        """Which input ``message`` is, in this conversation."""
        if type(message) is Event and message.name == "connection":
            return _SESSION_READY
        if type(message) is SdpInvite:
            if self._offer is None:
                return Input.OFFER
            return Input.REPEATED_OFFER if message.data.sdp == self._offer else Input.NEW_OFFER
        return _INPUT_BY_CLASS.get(type(message), _UNKNOWN)

    def _took(self, key: Input, message: Message) -> None:
        """Note what later inputs depend on: the first offer, whether answered or crossed."""
        if key is Input.OFFER:
            assert isinstance(message, SdpInvite), "only an sdpInvite is an offer"
            self._offer = message.data.sdp

    def _move(
        self,
        target: ConnectionState,
        key: Input,
        message: Message,
        now: float,
        *,
        sent: bool = False,
    ) -> None:
        if target is self._state:
            return
        previous, self._state = self._state, target
        timeout = self._timeouts.get(target)
        self._deadline = None if timeout is None else now + timeout
        if isinstance(message, Error):
            self._fail(service_error(message.data.message))
        elif target is ConnectionState.FAILED:
            reason = f"{key.value} in state {previous.value}: the conversation cannot go on"
            # Both ends fail; the end that sent it broke the protocol itself.
            self._fail(LocalProtocolError(reason) if sent else RemoteProtocolError(reason))
        elif target is ConnectionState.ENDED:
            self._ended()

    def _fail(self, error: BlackBoxError) -> None:
        self._state = ConnectionState.FAILED
        self._deadline = None
        self._error = error
        # What ends with the conversation (a reply in progress) ends before it is reported.
        self._ended()
        self._events.append(ConversationFailed(error))

    def _row(self) -> Mapping[Input, ConnectionState]:
        return TABLES[self._lifecycle][self._state]

    def _violated(self, reason: str, frame: str) -> None:
        self._events.append(ProtocolViolation(reason, frame[:_EXCERPT]))

    def _invalid(self, error: InvalidMessage, frame: str, now: float) -> None:
        self._violated(error.reason, frame)

    def _unexpected(self, received: Input, frame: str, now: float) -> None:
        self._violated(f"unexpected {received.value} in state {self._state.value}", frame)

    def _oversized(self, reason: str, frame: str, now: float) -> None:
        self._violated(reason, frame)

    def _timed_out(self, error: ProtocolTimeout, now: float) -> None:
        self._fail(error)

    def _check_sdp(self, sdp: str) -> str | None:
        if len(sdp) > self._max_sdp_size:
            return f"an SDP of {len(sdp)} characters is over the {self._max_sdp_size} limit"
        return None

    def _accept(self, message: Message, now: float) -> str | None:
        """Emit the events of a received, allowed message, or say why it is refused.

        Raises:
            RemoteProtocolError: the message is refused and the conversation
                cannot go on without it (an offer too big to answer).
        """
        raise NotImplementedError

    def _ended(self) -> None:
        """The conversation is over: drop what can no longer be answered."""


class ClientConnection(_Connection):
    """The client end: sends ``initialize``, receives the agent's side.

    Args:
        session_timeout: seconds from ``initialize`` to ``event connection``.
        offer_timeout: voice: seconds from ``event connection`` to ``sdpInvite``.
        terminate_timeout: seconds from ``terminate`` to ``conversationResult``.
        tool_timeout: seconds the app has to reply to a tool request; then an
            error result is sent for it and ``ToolTimedOut`` emitted.
        max_pending_tools: how many tool requests may await the app's reply at
            once; a request beyond them is answered with an error result at
            once (and reported as a ``ProtocolViolation``).
        max_frame_size: the longest frame accepted, in characters.
        max_sdp_size: the longest SDP offer accepted, in characters.
        reply_pause: seconds of a source's silence that end its turn (see
            ``blackbox_protocol.turns``).
        wall_clock: POSIX seconds for the frames' timestamps; ``None``: ``now``.
    """

    _role = Role.CLIENT

    def __init__(
        self,
        *,
        session_timeout: float = 10.0,
        offer_timeout: float = 10.0,
        terminate_timeout: float = 5.0,
        tool_timeout: float = 30.0,
        max_pending_tools: int = DEFAULT_MAX_PENDING_TOOLS,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_sdp_size: int = DEFAULT_MAX_SDP_SIZE,
        reply_pause: float = DEFAULT_REPLY_PAUSE,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            timeouts={
                ConnectionState.AWAITING_SESSION: session_timeout,
                ConnectionState.AWAITING_OFFER: offer_timeout,
                ConnectionState.TERMINATING: terminate_timeout,
            },
            max_frame_size=max_frame_size,
            max_sdp_size=max_sdp_size,
            wall_clock=wall_clock,
        )
        self._turns = TurnTracker(pause=reply_pause)
        self._tool_timeout = tool_timeout
        self._max_pending_tools = max_pending_tools
        #: Tool requests awaiting the app's reply: id to (deadline, tool name).
        self._pending_tools: dict[str, tuple[float, str]] = {}
        #: The latest tool request ids, oldest first (a dict keeps the order).
        self._seen_tool_ids: dict[str, None] = {}
        self._connected: Connected | None = None
        self._result: ConversationResultData | None = None
        self._call_type: CallType | None = None

    @property
    def conversation_id(self) -> str | None:
        """The id from ``event connection`` (``jobId`` or ``recordId``), once it came."""
        return None if self._connected is None else self._connected.conversation_id

    @property
    def result(self) -> ConversationResultData | None:
        """The conversation's result, once it came."""
        return self._result

    @property
    def call_type(self) -> CallType | None:
        """The call type given to ``initialize``, once it was sent."""
        return self._call_type

    @property
    def transcript(self) -> tuple[Turn, ...]:
        """The turns so far, oldest first: each source's chunks assembled (see ``turns``).

        A turn still being spoken is not in it until it ends (``current_turn``).
        """
        return self._turns.transcript

    @property
    def current_turn(self) -> Turn | None:
        """The turn being spoken now, as it stands, or ``None``."""
        return self._turns.current

    @property
    def can_terminate(self) -> bool:
        """Whether ``terminate`` is allowed now (the conversation started and is not ending)."""
        return Input.TERMINATE in self._row()

    @property
    def can_answer(self) -> bool:
        """Whether ``answer`` is allowed now: an offer awaits its answer."""
        return Input.ANSWER in self._row()

    @property
    def can_send_text(self) -> bool:
        """Whether ``send_text`` is allowed now."""
        return Input.CHAT_MESSAGE in self._row()

    @property
    def pending_tool_ids(self) -> frozenset[str]:
        """Ids of the tool requests still awaiting a reply."""
        return frozenset(self._pending_tools)

    def next_deadline(self) -> float | None:
        tool_deadlines = (deadline for deadline, _ in self._pending_tools.values())
        deadlines = (self._deadline, self._turns.next_deadline(), *tool_deadlines)
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, *, now: float) -> None:
        self._events += self._turns.handle_timer(now=now)
        super().handle_timer(now=now)
        for tool_id, (deadline, name) in list(self._pending_tools.items()):
            if now >= deadline:
                self.fail_tool(tool_id, f"the tool {name!r} did not answer in time", now=now)
                self._events.append(ToolTimedOut(tool_id, name))

    # App commands.

    def initialize(
        self,
        call_type: CallType | str,
        *,
        additional_data: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        now: float,
    ) -> None:
        """Start the conversation: send ``initialize``. Call once, right after the socket opens.

        Args:
            call_type: ``chat``, ``webCall`` or ``onPhone``.
            additional_data: free-form data handed to the agent.
            endpoint: the phone number to dial, for ``onPhone``.
            now: the current time, POSIX seconds.

        Raises:
            LocalProtocolError: already initialized, or an unknown call type.
        """
        kind = parse_call_type(call_type)
        request = InitializeRequest(
            call_type=kind.value, additional_data=additional_data, endpoint=endpoint
        )
        self._send(Initialize(request=request), now=now)
        self._lifecycle = _LIFECYCLE[kind]
        self._call_type = kind

    def send_text(self, text: str, *, now: float) -> None:
        """Send the user's chat text.

        A reply in progress ends: the user's turn has begun.

        Raises:
            LocalProtocolError: the conversation is not running (or it is a voice
                call whose media is not yet negotiated).
        """
        self._send(IncomingChatMessage(content=text), now=now)
        self._events += self._turns.end()

    def answer(self, sdp: str, *, now: float) -> None:
        """Send the SDP answer to the server's offer (with every ICE candidate).

        Raises:
            LocalProtocolError: no offer is awaiting an answer.
        """
        self._send(SdpAnswer(data=SdpAnswerData(sdp_answer=sdp)), now=now)

    def reply_to_tool(self, tool_id: str, result: Any, *, now: float) -> None:
        """Send a tool's result (any JSON value) for the request ``tool_id``.

        Raises:
            LocalProtocolError: no such request awaits a reply (never asked,
                already answered, timed out, or the conversation ended), or the
                result is not JSON.
        """
        if tool_id not in self._pending_tools:
            raise LocalProtocolError(f"no tool request {tool_id!r} awaits a reply")
        content = ToolResponseContent(id=tool_id, result=result)
        self._send(WebsocketToolResponse(content=content), now=now)
        del self._pending_tools[tool_id]

    def fail_tool(self, tool_id: str, reason: str, *, now: float) -> None:
        """Answer the request ``tool_id`` with an error result, ``{"error": reason}``.

        Raises:
            LocalProtocolError: as for ``reply_to_tool``.
        """
        self.reply_to_tool(tool_id, {"error": reason}, now=now)

    def terminate(self, *, now: float) -> None:
        """Ask the server to end the conversation; ``ConversationEnded`` follows.

        Raises:
            LocalProtocolError: not initialized, or already terminating or over.
        """
        self._send(Terminate(), now=now)

    # Received messages.

    def _accept(self, message: Message, now: float) -> str | None:
        match message:
            case Event(name="connection", data=data):
                self._connected = Connected(
                    data.record_id if data else None, data.job_id if data else None
                )
                self._events.append(self._connected)
            case Event(name=name, data=data):
                self._events.append(EventReceived(name, data))
            case Text(content=content):
                partial = content.type == "potential"
                self._events += self._turns.chunk(
                    content.source, content.text, partial=partial, now=now
                )
                self._events.append(TextReceived(content.source, content.text, partial))
            case SdpInvite(data=data):
                if data.sdp == self._offer:
                    return "the offer again (the same SDP): ignored, it is answered once"
                refused = self._check_sdp(data.sdp)
                if refused is not None:
                    raise RemoteProtocolError(f"the offer cannot be answered: {refused}")
                self._events.append(OfferReceived(data.sdp))
            case WebsocketToolRequest(content=request):
                return self._tool_requested(request, now)
            case ToolCall() | ToolCallResult():
                self._events.append(ToolLogReceived(message))
            case ConversationResult(result=result):
                self._result = result
                self._events += self._turns.end()
                self._events.append(ConversationEnded(result))
            case _:
                assert isinstance(message, UnknownMessage), "the server sends no other message"
                self._events.append(UnknownMessageReceived(message))
        return None

    def _tool_requested(self, request: ToolRequestContent, now: float) -> str | None:
        # The agent asks for a tool once it has had its say: its reply is over.
        self._events += self._turns.end()
        if request.id in self._seen_tool_ids:
            return f"a second tool request with id {request.id!r}"
        self._remember_tool(request.id)
        if len(self._pending_tools) >= self._max_pending_tools:
            many = f"{self._max_pending_tools} tool requests await a reply already"
            self._answer_at_once(request.id, many, now)
            return f"{many}; answered with an error result"
        self._pending_tools[request.id] = (now + self._tool_timeout, request.tool_name)
        self._events.append(ToolRequested(request.id, request.tool_name, request.args))
        return None

    def _remember_tool(self, tool_id: str) -> None:
        self._seen_tool_ids[tool_id] = None
        if len(self._seen_tool_ids) > _REMEMBERED_TOOL_IDS:
            del self._seen_tool_ids[next(iter(self._seen_tool_ids))]

    def _answer_at_once(self, tool_id: str, reason: str, now: float) -> None:
        """Send an error result for a request the app never sees."""
        content = ToolResponseContent(id=tool_id, result={"error": reason})
        self._send(WebsocketToolResponse(content=content), now=now)

    def _invalid(self, error: InvalidMessage, frame: str, now: float) -> None:
        """Report a refused frame; a tool request whose id can be read still gets an answer.

        The server waits for every request's response, so an unanswered one
        would stall the agent: it gets an error result instead.
        """
        tool_id = _tool_id(frame) if Input.TOOL_REQUEST in self._row() else None
        if tool_id is None or tool_id in self._seen_tool_ids:
            super()._invalid(error, frame, now)
            return
        self._remember_tool(tool_id)
        self._answer_at_once(tool_id, f"invalid request: {error}", now)
        self._violated(f"{error.reason}; answered with an error result", frame)

    def _ended(self) -> None:
        self._pending_tools.clear()
        self._events += self._turns.end()


class ServerConnection(_Connection):
    """The server end (the service, or an emulator of it).

    Besides reporting what the client does, it applies the service's own
    rules: no ``initialize`` in time, a second ``initialize`` and an oversized
    frame each get the documented error frame, which fails the conversation.

    Args:
        initialize_timeout: seconds from the socket's opening to ``initialize``;
            count them from ``now`` given to the constructor.
        max_frame_size: the longest frame accepted, in characters.
        max_sdp_size: the longest SDP answer accepted, in characters.
        wall_clock: POSIX seconds for the frames' timestamps; ``None``: ``now``.
    """

    _role = Role.SERVER

    def __init__(
        self,
        *,
        now: float,
        initialize_timeout: float = 10.0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_sdp_size: int = DEFAULT_MAX_SDP_SIZE,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            timeouts={ConnectionState.AWAITING_INITIALIZE: initialize_timeout},
            max_frame_size=max_frame_size,
            max_sdp_size=max_sdp_size,
            wall_clock=wall_clock,
        )
        self._deadline = now + initialize_timeout
        self._call_type: CallType | None = None
        self._requested_tools: set[str] = set()
        self._answered_tools: set[str] = set()

    @property
    def call_type(self) -> CallType | None:
        """The call type the client asked for, once ``initialize`` came."""
        return self._call_type

    # App commands.

    def accept(
        self, *, job_id: str | None = None, record_id: str | None = None, now: float
    ) -> None:
        """Tell the client the agent's session is ready: send ``event connection``.

        Raises:
            LocalProtocolError: no ``initialize`` awaits acceptance.
        """
        data = EventData(job_id=job_id, record_id=record_id)
        self._send(Event(name="connection", data=data), now=now)

    def send_event(self, name: str, data: Mapping[str, Any] | None = None, *, now: float) -> None:
        """Send a lifecycle ``event`` such as ``opened`` (``connection`` is ``accept``)."""
        self._send(Event(name=name, data=EventData(extra=dict(data or {}))), now=now)

    def send_text(
        self, text: str, *, source: str = "assistant", partial: bool = False, now: float
    ) -> None:
        """Send a transcript chunk: the agent's words, or the echo of the user's."""
        content = TextContent(source=source, text=text, type="potential" if partial else None)
        self._send(Text(content=content), now=now)

    def offer(self, sdp: str, *, key: Literal["invite", "sdpOffer"] = "invite", now: float) -> None:
        """Send the SDP offer, under ``data.invite`` (live) or ``data.sdpOffer`` (documented)."""
        data = SdpInviteData(invite=sdp) if key == "invite" else SdpInviteData(sdp_offer=sdp)
        self._send(SdpInvite(data=data), now=now)

    def request_tool(self, tool_id: str, name: str, args: Mapping[str, Any], *, now: float) -> None:
        """Ask the client to run a tool; ``ToolResponseReceived`` carries its result.

        Raises:
            LocalProtocolError: ``tool_id`` was used before.
        """
        if tool_id in self._requested_tools:
            raise LocalProtocolError(f"the tool request id {tool_id!r} was used before")
        content = ToolRequestContent(id=tool_id, tool_name=name, args=args)
        self._send(WebsocketToolRequest(content=content), now=now)
        self._requested_tools.add(tool_id)

    def end(self, result: ConversationResultData | None = None, *, now: float) -> None:
        """Send ``conversationResult`` (by default ``status: Completed``): the conversation ends."""
        result = result or ConversationResultData(status="Completed")
        self._send(ConversationResult(result=result), now=now)

    def send_error(self, message: str, *, now: float) -> None:
        """Send an ``error`` frame; the conversation fails on both ends."""
        self._send(Error(data=ErrorData(message=message)), now=now)

    # Received messages and the service's rules.

    def _accept(self, message: Message, now: float) -> str | None:
        match message:
            case Initialize(request=request):
                return self._initialized(request)
            case IncomingChatMessage(content=text):
                self._events.append(ChatMessageReceived(text))
            case SdpAnswer(data=data):
                refused = self._check_sdp(data.sdp_answer)
                if refused is not None:
                    return refused
                self._events.append(AnswerReceived(data.sdp_answer))
            case WebsocketToolResponse(content=response):
                if response.id not in self._requested_tools - self._answered_tools:
                    return f"no tool request {response.id!r} awaits a reply"
                self._answered_tools.add(response.id)
                self._events.append(ToolResponseReceived(response.id, response.result))
            case Terminate():
                self._events.append(TerminateReceived())
            case _:
                assert isinstance(message, UnknownMessage), "the client sends no other message"
                self._events.append(UnknownMessageReceived(message))
        return None

    def _initialized(self, request: InitializeRequest) -> str | None:
        try:
            self._call_type = parse_call_type(request.call_type)
        except LocalProtocolError as refused:
            return str(refused)
        self._lifecycle = _LIFECYCLE[self._call_type]
        self._events.append(
            InitializeReceived(self._call_type, request.additional_data, request.endpoint)
        )
        return None

    def _unexpected(self, received: Input, frame: str, now: float) -> None:
        super()._unexpected(received, frame, now)
        if received is Input.INITIALIZE:
            self._refuse(MULTIPLE_INITS, now)

    def _oversized(self, reason: str, frame: str, now: float) -> None:
        super()._oversized(reason, frame, now)
        self._refuse(TOO_LARGE, now)

    def _timed_out(self, error: ProtocolTimeout, now: float) -> None:
        # The only deadline a server has is the one for ``initialize``.
        self._refuse(INIT_NOT_RECEIVED, now)

    def _refuse(self, message: str, now: float) -> None:
        """Send the service's error for a broken rule, unless the conversation is over."""
        if Input.ERROR in self._row():
            self.send_error(message, now=now)
