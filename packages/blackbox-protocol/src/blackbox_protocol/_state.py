"""Every transition rule of the protocol, as data.

The conversation has one state, which both ends track: a message moves it the
same way whether this end sent it or received it, so this module does not know
which side is local (as in h11). There is one table per lifecycle of
PROTOCOL.md section 5: chat (also used for ``onPhone``, which has no media
here) and voice.

``TABLES[lifecycle][state][input]`` is the state after ``input``. An input a
state does not list is an error, and never changes the state: the app sending
it gets ``LocalProtocolError``; the peer sending it gets a
``ProtocolViolation`` event. ``CLOSE`` is listed in every state.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

__all__ = [
    "AWAITED",
    "CLEAN_CLOSE",
    "INPUT_BY_TYPE",
    "SENDER",
    "TABLES",
    "ConnectionState",
    "Input",
    "Lifecycle",
    "Role",
]


class _Enum(Enum):
    """An enum hashed by identity: its members are singletons, so this is exact,
    and it is cheap where ``Enum.__hash__`` (a Python-level hash of the name)
    costs on every table lookup of every frame."""

    __hash__ = object.__hash__


class Role(_Enum):
    """Which end of the socket."""

    #: Opens the socket and sends ``initialize``.
    CLIENT = "client"
    #: The service (or the emulator).
    SERVER = "server"


class Lifecycle(_Enum):
    """Which lifecycle of PROTOCOL.md section 5 a conversation follows."""

    #: Text only (``chat`` and ``onPhone`` call types).
    CHAT = "chat"
    #: ``webCall``: an SDP offer and answer, then audio over WebRTC.
    VOICE = "voice"


class ConnectionState(_Enum):
    """The state of the conversation on one socket."""

    #: The socket is open; ``initialize`` has not been sent yet.
    AWAITING_INITIALIZE = "awaiting initialize"
    #: ``initialize`` was sent; the agent's session is not ready (``event connection``).
    AWAITING_SESSION = "awaiting session"
    #: Voice: the session is ready; the server's ``sdpInvite`` has not come.
    AWAITING_OFFER = "awaiting offer"
    #: Voice: the offer came; the client's ``sdpAnswer`` has not been sent.
    ANSWERING = "answering"
    #: The conversation is running (chat text, audio, tools).
    ACTIVE = "active"
    #: The client sent ``terminate``; the result has not come.
    TERMINATING = "terminating"
    #: ``conversationResult`` came; only the socket's close remains.
    ENDED = "ended"
    #: The conversation cannot go on (an error frame, a timeout, a second offer); close the socket.
    FAILED = "failed"
    #: The socket is closed. Nothing more happens.
    CLOSED = "closed"


class Input(_Enum):
    """What can happen to a conversation: a message either way, a timer, the close."""

    INITIALIZE = "initialize"
    #: ``event`` named ``connection``.
    SESSION_READY = "event connection"
    #: ``event`` with any other name.
    EVENT = "event"
    TEXT = "text"
    CHAT_MESSAGE = "incomingChatMessage"
    OFFER = "sdpInvite"
    ANSWER = "sdpAnswer"
    TOOL_REQUEST = "websocketToolRequest"
    TOOL_RESPONSE = "websocketToolResponse"
    #: ``toolCall`` and ``toolCallResult``.
    TOOL_LOG = "tool log"
    TERMINATE = "terminate"
    RESULT = "conversationResult"
    ERROR = "error"
    #: A message of a type this SDK does not know.
    UNKNOWN = "unknown message"
    #: The state's deadline passed (see ``AWAITED``).
    TIMEOUT = "timeout"
    #: The socket closed.
    CLOSE = "close"


#: The input each wire ``type`` is (``event`` is resolved by its name).
INPUT_BY_TYPE: Final[Mapping[str, Input]] = {
    "initialize": Input.INITIALIZE,
    "event": Input.EVENT,
    "text": Input.TEXT,
    "incomingChatMessage": Input.CHAT_MESSAGE,
    "sdpInvite": Input.OFFER,
    "sdpAnswer": Input.ANSWER,
    "websocketToolRequest": Input.TOOL_REQUEST,
    "websocketToolResponse": Input.TOOL_RESPONSE,
    "toolCall": Input.TOOL_LOG,
    "toolCallResult": Input.TOOL_LOG,
    "terminate": Input.TERMINATE,
    "conversationResult": Input.RESULT,
    "error": Input.ERROR,
}

#: Who may send each message input; the others (unknown, timeout, close) have no sender.
SENDER: Final[Mapping[Input, Role]] = {
    Input.INITIALIZE: Role.CLIENT,
    Input.CHAT_MESSAGE: Role.CLIENT,
    Input.ANSWER: Role.CLIENT,
    Input.TOOL_RESPONSE: Role.CLIENT,
    Input.TERMINATE: Role.CLIENT,
    Input.SESSION_READY: Role.SERVER,
    Input.EVENT: Role.SERVER,
    Input.TEXT: Role.SERVER,
    Input.OFFER: Role.SERVER,
    Input.TOOL_REQUEST: Role.SERVER,
    Input.TOOL_LOG: Role.SERVER,
    Input.RESULT: Role.SERVER,
    Input.ERROR: Role.SERVER,
}

#: What each state waits for; a state listed here has a deadline when its end
#: configured a timeout for it, and ``TIMEOUT`` fails the conversation.
AWAITED: Final[Mapping[ConnectionState, str]] = {
    ConnectionState.AWAITING_INITIALIZE: "initialize",
    ConnectionState.AWAITING_SESSION: "event connection",
    ConnectionState.AWAITING_OFFER: "sdpInvite",
    ConnectionState.TERMINATING: "conversationResult after terminate",
}

#: States in which the socket closing is a normal end (PROTOCOL.md section 5:
#: close 1006 after ``terminate`` or the result); elsewhere it is a disconnection.
CLEAN_CLOSE: Final = frozenset(
    {ConnectionState.TERMINATING, ConnectionState.ENDED, ConnectionState.FAILED}
)

_S = ConnectionState
_I = Input

#: Inputs that inform without moving the conversation.
_INFORMATIVE: Final = {_I.EVENT: None, _I.TEXT: None, _I.TOOL_LOG: None, _I.UNKNOWN: None}
#: Tool requests and replies may cross at any time while the agent runs.
_TOOLS: Final = {_I.TOOL_REQUEST: None, _I.TOOL_RESPONSE: None}
#: A second offer asks for a renegotiation the protocol does not have: the
#: media would change under the call, so the conversation cannot go on.
_RENEGOTIATION: Final = {_I.OFFER: _S.FAILED}
#: How any live conversation can end.
_ENDINGS: Final = {_I.TERMINATE: _S.TERMINATING, _I.RESULT: _S.ENDED, _I.ERROR: _S.FAILED}

Row = Mapping[Input, ConnectionState]


def _row(state: ConnectionState, *parts: Mapping[Input, ConnectionState | None]) -> Row:
    """A state's row; ``None`` targets mean "stay", and ``CLOSE`` is always listed."""
    row = {_I.CLOSE: _S.CLOSED}
    for part in parts:
        row.update({key: state if target is None else target for key, target in part.items()})
    return row


def _table(*, voice: bool) -> Mapping[ConnectionState, Row]:
    after_session = _S.AWAITING_OFFER if voice else _S.ACTIVE
    chat = {_I.CHAT_MESSAGE: None}
    # Live clients that sent chat text before ``event connection`` still worked.
    early_chat = {} if voice else chat
    # In chat an offer is merely out of place (a violation); in voice it is fatal.
    renegotiation = _RENEGOTIATION if voice else {}
    rows = {
        _S.AWAITING_INITIALIZE: _row(
            _S.AWAITING_INITIALIZE,
            {_I.INITIALIZE: _S.AWAITING_SESSION, _I.ERROR: _S.FAILED, _I.UNKNOWN: None},
        ),
        _S.AWAITING_SESSION: _row(
            _S.AWAITING_SESSION,
            {_I.SESSION_READY: after_session, _I.EVENT: None, _I.UNKNOWN: None},
            early_chat,
            _ENDINGS,
        ),
        _S.AWAITING_OFFER: _row(
            _S.AWAITING_OFFER, {_I.OFFER: _S.ANSWERING}, _INFORMATIVE, _TOOLS, _ENDINGS
        ),
        _S.ANSWERING: _row(
            _S.ANSWERING, {_I.ANSWER: _S.ACTIVE}, _RENEGOTIATION, _INFORMATIVE, _TOOLS, _ENDINGS
        ),
        _S.ACTIVE: _row(_S.ACTIVE, _INFORMATIVE, _TOOLS, chat, _ENDINGS, renegotiation),
        # ``event connection`` may cross an early ``terminate`` on the wire.
        _S.TERMINATING: _row(
            _S.TERMINATING,
            {_I.SESSION_READY: None},
            _INFORMATIVE,
            _TOOLS,
            {_I.RESULT: _S.ENDED, _I.ERROR: _S.FAILED},
        ),
        _S.ENDED: _row(_S.ENDED, _INFORMATIVE),
        _S.FAILED: _row(_S.FAILED),
        _S.CLOSED: {},
    }
    for state in AWAITED:
        rows[state] = {**rows[state], _I.TIMEOUT: _S.FAILED}
    if not voice:
        # Unreachable without media: only the close applies.
        rows[_S.AWAITING_OFFER] = rows[_S.ANSWERING] = _row(_S.CLOSED)
    return rows


#: The transition table of each lifecycle.
TABLES: Final[Mapping[Lifecycle, Mapping[ConnectionState, Row]]] = {
    Lifecycle.CHAT: _table(voice=False),
    Lifecycle.VOICE: _table(voice=True),
}
