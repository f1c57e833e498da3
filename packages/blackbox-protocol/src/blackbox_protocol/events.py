"""Events: what a connection tells the app, as past-tense facts.

A ``ClientConnection`` emits the server-side facts (``Connected``,
``TextReceived``, ``OfferReceived``, ``ToolRequested``, ``ConversationEnded``,
...); a ``ServerConnection`` emits the client-side ones
(``InitializeReceived``, ``ChatMessageReceived``, ``AnswerReceived``, ...).
Both emit ``ProtocolViolation``, ``ConversationFailed`` and, last of all,
``ConnectionClosed``. The driver adds one of its own: ``EventsDropped``, when
the app read too slowly to keep them all. The client's turn tracker adds
``ReplyStarted``, ``ReplyEnded`` and ``UserTurnEnded`` (see ``turns``).

``ClientEvent`` and ``ServerEvent`` are the closed unions of each side's events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from attrs import frozen

from blackbox_protocol.errors import BlackBoxError
from blackbox_protocol.messages import (
    CallType,
    ConversationResultData,
    EventData,
    Message,
    UnknownMessage,
)

if TYPE_CHECKING:
    from blackbox_protocol.turns import Turn

__all__ = [
    "AnswerReceived",
    "ChatMessageReceived",
    "ClientEvent",
    "Connected",
    "ConnectionClosed",
    "ConversationEnded",
    "ConversationFailed",
    "Event",
    "EventReceived",
    "EventsDropped",
    "InitializeReceived",
    "OfferReceived",
    "ProtocolViolation",
    "ReplyEnded",
    "ReplyStarted",
    "ServerEvent",
    "TerminateReceived",
    "TextReceived",
    "ToolLogReceived",
    "ToolRequested",
    "ToolResponseReceived",
    "ToolTimedOut",
    "UnknownMessageReceived",
    "UserTurnEnded",
]


@frozen
class Event:
    """The base of every event."""


# Client side: what the server did.


@frozen
class Connected(Event):
    """``event connection``: the agent's session is ready."""

    #: The documented id of the conversation's record.
    record_id: str | None
    #: The id the live service sends instead.
    job_id: str | None

    @property
    def conversation_id(self) -> str | None:
        """Whichever id the service sent (``jobId`` first)."""
        return self.job_id if self.job_id is not None else self.record_id


@frozen
class EventReceived(Event):
    """Any other lifecycle event (``opened``, ``closed``, ``failedOpen``, ...)."""

    name: str
    data: EventData | None


@frozen
class TextReceived(Event):
    """A transcript chunk; agent replies arrive in several."""

    #: ``"assistant"`` for the agent, ``"user"`` for the echo of the user's words.
    source: str
    text: str
    #: True when the service marked the text as potential (not final).
    partial: bool


@frozen
class ReplyStarted(Event):
    """The agent's first chunk of a reply came (the ``TextReceived`` with it follows)."""


@frozen
class ReplyEnded(Event):
    """The agent's reply is over: it was quiet for the reply pause, or something ended it.

    See ``blackbox_protocol.turns`` for when a reply counts as ended.
    """

    #: The reply's text: its chunks, joined.
    text: str
    #: The whole turn: its chunks and times.
    turn: Turn


@frozen
class UserTurnEnded(Event):
    """The user's turn is over: the echo of chat text, or the caller's words in a voice call."""

    text: str
    turn: Turn


@frozen
class OfferReceived(Event):
    """The server's SDP offer: answer it with ``ClientConnection.answer``."""

    sdp: str


@frozen
class ToolRequested(Event):
    """The agent asks the app to run a tool: reply with ``reply_to_tool`` or ``fail_tool``."""

    id: str
    name: str
    args: Mapping[str, Any]


@frozen
class ToolTimedOut(Event):
    """The app did not reply to a tool request in time; an error result was sent."""

    id: str
    name: str


@frozen
class ToolLogReceived(Event):
    """An informational ``toolCall`` or ``toolCallResult`` frame."""

    message: Message


@frozen
class ConversationEnded(Event):
    """``conversationResult``: the conversation is over; the socket closes next."""

    result: ConversationResultData


# Server side: what the client did.


@frozen
class InitializeReceived(Event):
    """The client started a conversation: accept it with ``ServerConnection.accept``."""

    call_type: CallType
    additional_data: Mapping[str, Any] | None
    endpoint: str | None


@frozen
class ChatMessageReceived(Event):
    """The user's chat text."""

    text: str


@frozen
class AnswerReceived(Event):
    """The client's SDP answer."""

    sdp: str


@frozen
class ToolResponseReceived(Event):
    """The client's result for a tool request."""

    id: str
    result: Any


@frozen
class TerminateReceived(Event):
    """The client asked to end the conversation: send the result with ``end``."""


# Both sides.


@frozen
class UnknownMessageReceived(Event):
    """A frame of a type this SDK does not know, kept whole."""

    message: UnknownMessage


@frozen
class ProtocolViolation(Event):
    """The peer sent something invalid or unexpected; it was ignored.

    The state did not change. ``excerpt`` is the start of the offending frame.
    """

    reason: str
    excerpt: str


@frozen
class ConversationFailed(Event):
    """The conversation cannot go on; ``error`` says why (typed). Close the socket."""

    error: BlackBoxError


@frozen
class EventsDropped(Event):
    """The driver's: the app read too slowly, and ``count`` unread events were dropped.

    ``connect(max_events=...)`` bounds the unread events; past it the oldest
    go, and this event comes in their place. The events that end the call
    (``ConversationEnded``, ``ConversationFailed``, ``ConnectionClosed``) are
    never dropped.
    """

    count: int


@frozen
class ConnectionClosed(Event):
    """The socket closed; always the last event."""

    #: The close code, or ``None`` when no close frame came (1006).
    code: int | None
    reason: str


#: Every event a client gets: a ``ClientConnection``'s, and the driver's
#: ``EventsDropped``. A closed union: ``match`` on it with ``assert_never``
#: in the last case, and a type checker tells you what you did not handle.
ClientEvent: TypeAlias = (
    Connected
    | EventReceived
    | TextReceived
    | ReplyStarted
    | ReplyEnded
    | UserTurnEnded
    | OfferReceived
    | ToolRequested
    | ToolTimedOut
    | ToolLogReceived
    | ConversationEnded
    | UnknownMessageReceived
    | ProtocolViolation
    | ConversationFailed
    | EventsDropped
    | ConnectionClosed
)

#: Every event a ``ServerConnection`` emits; a closed union, as ``ClientEvent``.
ServerEvent: TypeAlias = (
    InitializeReceived
    | ChatMessageReceived
    | AnswerReceived
    | ToolResponseReceived
    | TerminateReceived
    | UnknownMessageReceived
    | ProtocolViolation
    | ConversationFailed
    | ConnectionClosed
)
