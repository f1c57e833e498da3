"""blackbox_protocol: the protocol of the BlackBox Python SDK.

The sans-IO core: messages and their codec (``encode``, ``decode``), client
and server connection state machines, events, errors, and the
``AudioSession`` media contract; none of it performs I/O. And a thin anyio
driver, ``connect()``, that runs the core over a real WebSocket; it is
imported on first use, so the core alone never loads an I/O library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blackbox_protocol._codec import decode, encode, format_timestamp, to_wire
from blackbox_protocol.connection import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_PENDING_TOOLS,
    DEFAULT_MAX_SDP_SIZE,
    ClientConnection,
    ConnectionState,
    ServerConnection,
    parse_call_type,
)
from blackbox_protocol.errors import (
    AuthenticationError,
    BlackBoxError,
    ClientBugError,
    ConfigurationError,
    ConnectError,
    DisconnectedError,
    InvalidMessage,
    LocalProtocolError,
    MediaError,
    MediaNotConnected,
    NoReply,
    ProtocolTimeout,
    RemoteProtocolError,
    ReplyTimeout,
    ServiceError,
    service_error,
)
from blackbox_protocol.events import (
    AnswerReceived,
    ChatMessageReceived,
    ClientEvent,
    Connected,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    Event,
    EventReceived,
    EventsDropped,
    InitializeReceived,
    OfferReceived,
    ProtocolViolation,
    ReplyEnded,
    ReplyStarted,
    ServerEvent,
    TerminateReceived,
    TextReceived,
    ToolLogReceived,
    ToolRequested,
    ToolResponseReceived,
    ToolTimedOut,
    UnknownMessageReceived,
    UserTurnEnded,
)
from blackbox_protocol.media import AudioFrame, AudioSession, MediaState
from blackbox_protocol.messages import CallType, ConversationResultData, Message, UnknownMessage
from blackbox_protocol.turns import DEFAULT_REPLY_PAUSE, Latency, Reply, Turn, TurnTracker

if TYPE_CHECKING:
    from blackbox_protocol._call import Call, EventHandler, Retry, Timeouts, UnhandledTools
    from blackbox_protocol._connect import Connecting, connect
    from blackbox_protocol._endpoint import DEFAULT_SERVER, RU_SERVER, check_server
    from blackbox_protocol._tools import ToolContext, ToolHandler
    from blackbox_protocol.driving import Driver, Transport

#: The driver's names, and the module each is imported from on first use.
_DRIVER = {
    "Call": "_call",
    "Connecting": "_connect",
    "Driver": "driving",
    "EventHandler": "_call",
    "Retry": "_call",
    "Timeouts": "_call",
    "ToolContext": "_tools",
    "ToolHandler": "_tools",
    "Transport": "driving",
    "UnhandledTools": "_call",
    "connect": "_connect",
    "DEFAULT_SERVER": "_endpoint",
    "RU_SERVER": "_endpoint",
    "check_server": "_endpoint",
}


def __getattr__(name: str) -> Any:
    module = _DRIVER.get(name)
    if module is None:
        raise AttributeError(f"module 'blackbox_protocol' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"blackbox_protocol.{module}"), name)


__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_PENDING_TOOLS",
    "DEFAULT_MAX_SDP_SIZE",
    "DEFAULT_REPLY_PAUSE",
    "DEFAULT_SERVER",
    "RU_SERVER",
    "AnswerReceived",
    "AudioFrame",
    "AudioSession",
    "AuthenticationError",
    "BlackBoxError",
    "Call",
    "CallType",
    "ChatMessageReceived",
    "ClientBugError",
    "ClientConnection",
    "ClientEvent",
    "ConfigurationError",
    "ConnectError",
    "Connected",
    "Connecting",
    "ConnectionClosed",
    "ConnectionState",
    "ConversationEnded",
    "ConversationFailed",
    "ConversationResultData",
    "DisconnectedError",
    "Driver",
    "Event",
    "EventHandler",
    "EventReceived",
    "EventsDropped",
    "InitializeReceived",
    "InvalidMessage",
    "Latency",
    "LocalProtocolError",
    "MediaError",
    "MediaNotConnected",
    "MediaState",
    "Message",
    "NoReply",
    "OfferReceived",
    "ProtocolTimeout",
    "ProtocolViolation",
    "RemoteProtocolError",
    "Reply",
    "ReplyEnded",
    "ReplyStarted",
    "ReplyTimeout",
    "Retry",
    "ServerConnection",
    "ServerEvent",
    "ServiceError",
    "TerminateReceived",
    "TextReceived",
    "Timeouts",
    "ToolContext",
    "ToolHandler",
    "ToolLogReceived",
    "ToolRequested",
    "ToolResponseReceived",
    "ToolTimedOut",
    "Transport",
    "Turn",
    "TurnTracker",
    "UnhandledTools",
    "UnknownMessage",
    "UnknownMessageReceived",
    "UserTurnEnded",
    "check_server",
    "connect",
    "decode",
    "encode",
    "format_timestamp",
    "parse_call_type",
    "service_error",
    "to_wire",
]
