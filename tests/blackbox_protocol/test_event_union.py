"""``ClientEvent`` and ``ServerEvent`` are closed unions: ``match`` over them is exhaustive.

``describe`` ends with ``assert_never``: the typecheck session (mypy, strict)
fails if an event is added to a union and not handled here, and the tests
below fail if an event class is left out of both unions.
"""

from __future__ import annotations

import inspect
import typing
from typing import assert_never

import blackbox_protocol.events as events_module
from blackbox_protocol import (
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


def describe(event: ClientEvent) -> str:
    """What a client app does with each event: every case, or mypy says which is missing."""
    match event:
        case Connected():
            return "connected"
        case EventReceived(name=name):
            return f"event {name}"
        case TextReceived(source=source):
            return f"text from {source}"
        case ReplyStarted():
            return "reply started"
        case ReplyEnded(text=text):
            return f"reply {text!r}"
        case UserTurnEnded(text=text):
            return f"user said {text!r}"
        case OfferReceived():
            return "offer"
        case ToolRequested(name=name):
            return f"tool {name}"
        case ToolTimedOut(name=name):
            return f"tool {name} timed out"
        case ToolLogReceived():
            return "tool log"
        case ConversationEnded(result=result):
            return f"ended: {result.status}"
        case UnknownMessageReceived():
            return "unknown"
        case ProtocolViolation(reason=reason):
            return f"violation: {reason}"
        case ConversationFailed(error=error):
            return f"failed: {error}"
        case EventsDropped(count=count):
            return f"{count} dropped"
        case ConnectionClosed(code=code):
            return f"closed {code}"
        case _:
            assert_never(event)


def members(union: object) -> set[type[Event]]:
    return set(typing.get_args(union))


def test_every_event_class_is_in_a_union() -> None:
    defined = {
        cls
        for _, cls in inspect.getmembers(events_module, inspect.isclass)
        if issubclass(cls, Event) and cls is not Event
    }
    assert defined == members(ClientEvent) | members(ServerEvent)


def test_the_unions_share_only_what_both_ends_emit() -> None:
    assert members(ClientEvent) & members(ServerEvent) == {
        UnknownMessageReceived,
        ProtocolViolation,
        ConversationFailed,
        ConnectionClosed,
    }
    assert {InitializeReceived, ChatMessageReceived, AnswerReceived} <= members(ServerEvent)
    assert {ToolResponseReceived, TerminateReceived} <= members(ServerEvent)


def test_describe_handles_an_event_of_each_kind() -> None:
    assert describe(ConnectionClosed(1000, "")) == "closed 1000"
    assert describe(EventsDropped(3)) == "3 dropped"
    assert describe(ReplyStarted()) == "reply started"
