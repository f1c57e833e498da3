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

Messages cross on the wire: each end may send while the other's message is
in flight, and then receives it in the state its own message led to. The
tables are built so that every such pair leaves both ends in the same state
once the link drains (a test checks every pair). Where the receiver's new
state cannot take the crossed message, ``CROSSED`` lists it: it arrives late,
it is no news, and it is dropped without an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

__all__ = [
    "AWAITED",
    "CLEAN_CLOSE",
    "CROSSED",
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
    #: The conversation's first ``sdpInvite``.
    OFFER = "sdpInvite"
    #: ``sdpInvite`` again with the offer already made (the same SDP): a
    #: retransmission, which changes nothing; the receiver reports it.
    REPEATED_OFFER = "sdpInvite repeating the offer"
    #: ``sdpInvite`` with a different offer after the first: a renegotiation,
    #: which the protocol does not have.
    NEW_OFFER = "sdpInvite with a new offer"
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


#: The input each wire ``type`` is (``event`` is resolved by its name, and
#: ``sdpInvite`` by the offers before it).
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
    Input.REPEATED_OFFER: Role.SERVER,
    Input.NEW_OFFER: Role.SERVER,
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
#: Once an offer was made: a new one asks for a renegotiation the protocol does
#: not have (the media would change under the call), so the conversation
#: cannot go on; the same one again is a retransmission, harmless.
_LATER_OFFERS: Final = {_I.NEW_OFFER: _S.FAILED, _I.REPEATED_OFFER: None}
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
    # In chat no offer is ever taken, so every one is out of place (a violation).
    later_offers = _LATER_OFFERS if voice else {}
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
            _S.ANSWERING, {_I.ANSWER: _S.ACTIVE}, _LATER_OFFERS, _INFORMATIVE, _TOOLS, _ENDINGS
        ),
        _S.ACTIVE: _row(_S.ACTIVE, _INFORMATIVE, _TOOLS, chat, _ENDINGS, later_offers),
        # ``event connection`` may cross an early ``terminate`` on the wire. So
        # may a renegotiation, after which the server has failed the call: the
        # client fails it too.
        _S.TERMINATING: _row(
            _S.TERMINATING,
            {_I.SESSION_READY: None},
            _INFORMATIVE,
            _TOOLS,
            {_I.RESULT: _S.ENDED, _I.ERROR: _S.FAILED},
            later_offers,
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


def _crossed(*, voice: bool) -> Mapping[ConnectionState, frozenset[Input]]:
    # The client's last words, sent before the server's result reached it: the
    # conversation is over, and the server has nothing to do with them.
    last_words = {_I.TERMINATE, _I.CHAT_MESSAGE, _I.TOOL_RESPONSE}
    crossed = {
        _S.ENDED: frozenset((last_words | {_I.ANSWER}) if voice else last_words),
        # The server offered before our ``terminate`` reached it: the call is
        # ending, so the offer is not answered (the server does not wait for it).
        _S.TERMINATING: frozenset({_I.OFFER} if voice else ()),
    }
    return {state: crossed.get(state, frozenset()) for state in ConnectionState}


#: What each state drops without a word when it arrives: messages that crossed
#: this end's own on the wire and are no news by now (see the module's docstring).
#: No state both lists an input in its row and here.
CROSSED: Final[Mapping[Lifecycle, Mapping[ConnectionState, frozenset[Input]]]] = {
    Lifecycle.CHAT: _crossed(voice=False),
    Lifecycle.VOICE: _crossed(voice=True),
}
