"""The wire messages of the BlackBox web-integration protocol, both directions.

One frozen attrs class per JSON ``type``, shaped like the wire (payload objects
are classes of their own) with snake_case names; the codec in ``_codec`` maps
them to and from camelCase JSON. Every class has the envelope fields
``timestamp`` and ``channel_id`` and an ``extra`` mapping that keeps the fields
this SDK does not know, so that nothing the service adds is lost.

The classes are plain data: building one checks nothing about the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

from attrs import field, frozen

__all__ = [
    "CallType",
    "ConversationResult",
    "ConversationResultData",
    "Error",
    "ErrorData",
    "Event",
    "EventData",
    "IncomingChatMessage",
    "Initialize",
    "InitializeRequest",
    "Message",
    "SdpAnswer",
    "SdpAnswerData",
    "SdpInvite",
    "SdpInviteData",
    "Terminate",
    "Text",
    "TextContent",
    "ToolCall",
    "ToolCallResult",
    "ToolRequestContent",
    "ToolResponseContent",
    "UnknownMessage",
    "WebsocketToolRequest",
    "WebsocketToolResponse",
]


def _extra() -> Any:
    return field(factory=dict, kw_only=True)


class CallType(StrEnum):
    """The ``request.callType`` of ``initialize``."""

    #: Text only, no WebRTC.
    CHAT = "chat"
    #: Voice over WebRTC; the server sends an SDP offer.
    WEB_CALL = "webCall"
    #: The server dials ``request.endpoint``, a phone number; no media here.
    ON_PHONE = "onPhone"


@frozen(kw_only=True)
class Message:
    """The envelope every frame shares. Subclasses set ``TYPE``."""

    TYPE: ClassVar[str] = ""

    #: ISO 8601 UTC as on the wire; ``None`` lets the encoder stamp it.
    timestamp: str | None = None
    #: Always ``null`` from clients; kept verbatim when received.
    channel_id: str | None = None
    #: Top-level fields this SDK does not know, kept as received.
    extra: Mapping[str, Any] = _extra()

    @property
    def type(self) -> str:
        """The wire ``type`` of this message."""
        return self.TYPE


# Client to server.


@frozen(kw_only=True)
class InitializeRequest:
    """``initialize.request``: what kind of conversation to start."""

    call_type: str
    additional_data: Mapping[str, Any] | None = None
    endpoint: str | None = None
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class Initialize(Message):
    """Starts the conversation; sent once, right after the socket opens."""

    TYPE: ClassVar[str] = "initialize"
    request: InitializeRequest


@frozen(kw_only=True)
class IncomingChatMessage(Message):
    """The user's chat text: ``content`` is a plain string on the wire."""

    TYPE: ClassVar[str] = "incomingChatMessage"
    content: str


@frozen(kw_only=True)
class SdpAnswerData:
    """``sdpAnswer.data``."""

    sdp_answer: str
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class SdpAnswer(Message):
    """The client's SDP answer, with every ICE candidate gathered."""

    TYPE: ClassVar[str] = "sdpAnswer"
    data: SdpAnswerData


@frozen(kw_only=True)
class ToolResponseContent:
    """``websocketToolResponse.content``: ``id`` echoes the request's."""

    id: str
    result: Any = None
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class WebsocketToolResponse(Message):
    """The client's answer to a ``websocketToolRequest``."""

    TYPE: ClassVar[str] = "websocketToolResponse"
    content: ToolResponseContent


@frozen(kw_only=True)
class Terminate(Message):
    """Ends the conversation gracefully; the server answers with the result."""

    TYPE: ClassVar[str] = "terminate"


# Server to client.


@frozen(kw_only=True)
class EventData:
    """``event.data``: ``recordId`` (documented) or ``jobId`` (live) on ``connection``."""

    record_id: str | None = None
    job_id: str | None = None
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class Event(Message):
    """A lifecycle event: ``connection``, ``opened``, ``closed``, ``failedOpen``, ..."""

    TYPE: ClassVar[str] = "event"
    name: str
    data: EventData | None = None


@frozen(kw_only=True)
class TextContent:
    """``text.content``. ``type`` is the older partial-text marker (``potential``)."""

    source: str
    text: str
    type: str | None = None
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class Text(Message):
    """A transcript chunk: the agent's words (``assistant``) or the user's echo (``user``)."""

    TYPE: ClassVar[str] = "text"
    content: TextContent


@frozen(kw_only=True)
class SdpInviteData:
    """``sdpInvite.data``: the offer sits under ``sdpOffer`` (documented) or ``invite`` (live)."""

    sdp_offer: str | None = None
    invite: str | None = None
    extra: Mapping[str, Any] = _extra()

    def __attrs_post_init__(self) -> None:
        if self.invite is None and self.sdp_offer is None:
            raise ValueError("an offer needs data.invite or data.sdpOffer")

    @property
    def sdp(self) -> str:
        """The offer SDP, whichever key carried it."""
        return self.invite if self.invite is not None else (self.sdp_offer or "")


@frozen(kw_only=True)
class SdpInvite(Message):
    """The server's SDP offer; the client answers with ``sdpAnswer``."""

    TYPE: ClassVar[str] = "sdpInvite"
    data: SdpInviteData


@frozen(kw_only=True)
class ToolRequestContent:
    """``websocketToolRequest.content``."""

    id: str
    tool_name: str
    args: Mapping[str, Any] = field(factory=dict)
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class WebsocketToolRequest(Message):
    """The agent asks the client to run a client-side tool."""

    TYPE: ClassVar[str] = "websocketToolRequest"
    content: ToolRequestContent


@frozen(kw_only=True)
class ToolCall(Message):
    """An informational tool log; its shape is undocumented, so all of it is in ``extra``."""

    TYPE: ClassVar[str] = "toolCall"


@frozen(kw_only=True)
class ToolCallResult(Message):
    """An informational tool-result log; its shape is undocumented (see ``extra``)."""

    TYPE: ClassVar[str] = "toolCallResult"


@frozen(kw_only=True)
class ConversationResultData:
    """``conversationResult.result``: typed where known, the rest in ``extra``."""

    status: str | None = None
    error_message: str | None = None
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class ConversationResult(Message):
    """The final outcome of the conversation."""

    TYPE: ClassVar[str] = "conversationResult"
    result: ConversationResultData


@frozen(kw_only=True)
class ErrorData:
    """``error.data``."""

    message: str
    extra: Mapping[str, Any] = _extra()


@frozen(kw_only=True)
class Error(Message):
    """An error frame from the service (a message, not an exception)."""

    TYPE: ClassVar[str] = "error"
    data: ErrorData


@frozen(kw_only=True)
class UnknownMessage(Message):
    """A frame whose ``type`` this SDK does not know; everything else is in ``extra``."""

    unknown_type: str

    @property
    def type(self) -> str:
        return self.unknown_type

    @property
    def raw(self) -> dict[str, Any]:
        """The frame as a JSON object, envelope included."""
        raw: dict[str, Any] = {"type": self.unknown_type}
        if self.timestamp is not None:
            raw["timestamp"] = self.timestamp
        # An odd-typed ``channelId`` stays in ``extra``: keep it rather than ``null``.
        if self.channel_id is not None or "channelId" not in self.extra:
            raw["channelId"] = self.channel_id
        raw.update((k, v) for k, v in self.extra.items() if k not in raw)
        return raw


#: Every known message class, by wire ``type``.
MESSAGE_CLASSES: Mapping[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Initialize,
        IncomingChatMessage,
        SdpAnswer,
        WebsocketToolResponse,
        Terminate,
        Event,
        Text,
        SdpInvite,
        WebsocketToolRequest,
        ToolCall,
        ToolCallResult,
        ConversationResult,
        Error,
    )
}
