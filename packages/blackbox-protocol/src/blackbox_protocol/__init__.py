"""blackbox_protocol: the sans-IO core of the BlackBox Python SDK.

Messages and their codec (``encode``, ``decode``), client and server
connection state machines, events, errors, and the ``AudioSession`` media
contract. Nothing here performs I/O.
"""

from __future__ import annotations

from blackbox_protocol._codec import decode, encode, format_timestamp
from blackbox_protocol.connection import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_SDP_SIZE,
    ClientConnection,
    ConnectionState,
    ServerConnection,
)
from blackbox_protocol.errors import (
    AuthenticationError,
    BlackBoxError,
    ClientBugError,
    ConfigurationError,
    DisconnectedError,
    InvalidMessage,
    LocalProtocolError,
    ProtocolTimeout,
    RemoteProtocolError,
    ServiceError,
    service_error,
)
from blackbox_protocol.events import (
    AnswerReceived,
    ChatMessageReceived,
    Connected,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    Event,
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
from blackbox_protocol.media import AudioFrame, AudioSession, MediaState
from blackbox_protocol.messages import CallType, Message, UnknownMessage

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_SDP_SIZE",
    "AnswerReceived",
    "AudioFrame",
    "AudioSession",
    "AuthenticationError",
    "BlackBoxError",
    "CallType",
    "ChatMessageReceived",
    "ClientBugError",
    "ClientConnection",
    "ConfigurationError",
    "Connected",
    "ConnectionClosed",
    "ConnectionState",
    "ConversationEnded",
    "ConversationFailed",
    "DisconnectedError",
    "Event",
    "EventReceived",
    "InitializeReceived",
    "InvalidMessage",
    "LocalProtocolError",
    "MediaState",
    "Message",
    "OfferReceived",
    "ProtocolTimeout",
    "ProtocolViolation",
    "RemoteProtocolError",
    "ServerConnection",
    "ServiceError",
    "TerminateReceived",
    "TextReceived",
    "ToolLogReceived",
    "ToolRequested",
    "ToolResponseReceived",
    "ToolTimedOut",
    "UnknownMessage",
    "UnknownMessageReceived",
    "decode",
    "encode",
    "format_timestamp",
    "service_error",
]
