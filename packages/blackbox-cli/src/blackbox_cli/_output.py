"""How events are shown: a transcript for people, or one JSON object a line for programs."""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol, TextIO

import attrs
from blackbox_protocol import (
    BlackBoxError,
    Connected,
    ConversationEnded,
    Event,
    EventsDropped,
    ProtocolViolation,
    ReplyEnded,
    TextReceived,
    ToolRequested,
    ToolTimedOut,
    UserTurnEnded,
    to_wire,
)

__all__ = ["HumanPrinter", "JsonPrinter", "Printer", "event_to_json"]


class Printer(Protocol):
    """Shows what happens in a conversation."""

    def event(self, event: Event) -> None:
        """Show one event."""

    def failed(self, error: BlackBoxError) -> None:
        """Show that the conversation failed (the one-line error goes to stderr anyway)."""

    def end_reply(self) -> None:
        """The agent stopped talking for now: finish its line."""

    def sent(self, text: str) -> None:
        """Show the user's text as sent (people see it; programs get its echo event)."""


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return to_wire(value)
    if isinstance(value, BlackBoxError):
        return {"type": type(value).__name__, "message": str(value)}
    return value


def event_to_json(event: Event) -> dict[str, Any]:
    """An event as a JSON object: ``event`` names it, then its fields (wire objects verbatim).

    A turn's end gives the turn's text and whether it was cut at the bound, not
    the whole turn: its chunks are the ``TextReceived`` lines before it, and its
    times are on the call's monotonic clock, which means nothing outside it.
    """
    if isinstance(event, ReplyEnded | UserTurnEnded):
        turn = event.turn
        return {"event": type(event).__name__, "text": turn.text, "truncated": turn.truncated}
    fields = {a.name: _jsonable(getattr(event, a.name)) for a in attrs.fields(type(event))}
    return {"event": type(event).__name__, **fields}


class JsonPrinter:
    """One JSON object per line on stdout, for every event."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out

    def _write(self, line: dict[str, Any]) -> None:
        self._out.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._out.flush()

    def event(self, event: Event) -> None:
        self._write(event_to_json(event))

    def failed(self, error: BlackBoxError) -> None:
        self._write({"event": "ConversationFailed", "error": _jsonable(error)})

    def end_reply(self) -> None:
        pass

    def sent(self, text: str) -> None:
        pass


class HumanPrinter:
    """The transcript on stdout, the agent's words as they stream; the rest on stderr."""

    def __init__(
        self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, *, show_user: bool = False
    ) -> None:
        self._out = out
        self._err = err
        self._in_reply = False
        # In chat the user's text is echoed back as typed; in a call it is what
        # the service heard, which is worth showing.
        self._show_user = show_user

    def event(self, event: Event) -> None:
        match event:
            case TextReceived(source="assistant", text=text):
                if not self._in_reply:
                    self._out.write("agent: ")
                    self._in_reply = True
                self._out.write(text)
                self._out.flush()
            case TextReceived(source="user", text=text) if self._show_user:
                self.sent(text)
            case Connected():
                self._note(f"connected (conversation {event.conversation_id})")
            case ToolRequested(name=name, args=args):
                self._note(f"tool {name}({json.dumps(args, ensure_ascii=False)})")
            case ToolTimedOut(name=name):
                self._note(f"tool {name} did not answer in time; an error result was sent")
            case ProtocolViolation(reason=reason):
                self._note(f"warning: ignored an invalid frame from the server: {reason}")
            case EventsDropped(count=count):
                self._note(f"warning: {count} events came faster than they were shown: dropped")
            case ConversationEnded(result=result):
                self.end_reply()
                outcome = result.status or "no status"
                if result.error_message:
                    outcome += f": {result.error_message}"
                self._out.write(f"conversation ended: {outcome}\n")
                self._out.flush()

    def failed(self, error: BlackBoxError) -> None:
        self.end_reply()

    def end_reply(self) -> None:
        if self._in_reply:
            self._out.write("\n")
            self._out.flush()
            self._in_reply = False

    def sent(self, text: str) -> None:
        self.end_reply()
        self._out.write(f"you: {text}\n")
        self._out.flush()

    def _note(self, text: str) -> None:
        self.end_reply()
        self._err.write(f"[{text}]\n")
        self._err.flush()
