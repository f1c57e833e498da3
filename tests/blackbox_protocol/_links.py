"""Both ends of a conversation joined in memory, healthy histories that lead to each state,
and the states each lifecycle can reach.

Shared by the crossing-messages test and the frame fuzzer: a ``Link`` holds a
client and a server; ``setup(history)`` plays a healthy conversation up to
one of ``HISTORIES``, draining the link after every step, so both ends agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from blackbox_protocol import (
    CallType,
    ClientConnection,
    LocalProtocolError,
    ProtocolViolation,
    ServerConnection,
)
from blackbox_protocol._state import TABLES, ConnectionState, Lifecycle
from blackbox_protocol.events import Event as AppEvent

__all__ = [
    "ANSWER",
    "CLIENT",
    "HISTORIES",
    "NEW_OFFER",
    "NOW",
    "OFFER",
    "REACHABLE",
    "SERVER",
    "Command",
    "History",
    "Link",
    "allowed",
    "setup",
]

NOW = 1_700_000_000.0
OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0 8\r\n"
#: A different offer: a renegotiation once ``OFFER`` was made.
NEW_OFFER = OFFER.replace("o=- 1 1", "o=- 1 2")
ANSWER = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0\r\n"


def _reachable(lifecycle: Lifecycle) -> frozenset[ConnectionState]:
    seen, frontier = {ConnectionState.AWAITING_INITIALIZE}, [ConnectionState.AWAITING_INITIALIZE]
    while frontier:
        for reached in TABLES[lifecycle][frontier.pop()].values():
            if reached not in seen:
                seen.add(reached)
                frontier.append(reached)
    return frozenset(seen)


#: The states the table reaches from the start, in each lifecycle.
REACHABLE: Mapping[Lifecycle, frozenset[ConnectionState]] = {
    lifecycle: _reachable(lifecycle) for lifecycle in Lifecycle
}


class Link:
    """Both ends of one conversation and the frames in flight between them."""

    def __init__(self, call_type: CallType) -> None:
        self.client = ClientConnection()
        self.server = ServerConnection(now=NOW)
        self.call_type = call_type
        self.client_events: list[AppEvent] = []
        self.server_events: list[AppEvent] = []

    def collect(self) -> None:
        """Keep the events both ends produced so far."""
        self.client_events += self.client.events_received()
        self.server_events += self.server.events_received()

    def drain(self) -> None:
        """Deliver every frame in flight, both ways, until the link is quiet."""
        while True:
            to_server, to_client = self.client.frames_to_send(), self.server.frames_to_send()
            if not to_server and not to_client:
                return
            for frame in to_server:
                self.server.receive_frame(frame, now=NOW)
            for frame in to_client:
                self.client.receive_frame(frame, now=NOW)
            self.collect()

    def violations(self) -> list[str]:
        """The reasons of every violation either end reported."""
        return [
            event.reason
            for event in self.client_events + self.server_events
            if isinstance(event, ProtocolViolation)
        ]

    def pending_tool(self) -> str:
        """The id of a tool request the client has not answered (a made-up one if none)."""
        return min(self.client.pending_tool_ids, default="never-requested")


Command = Callable[[Link], None]
History = tuple[CallType, str]

#: What the client app can send once it has initialized.
CLIENT: Mapping[str, Command] = {
    "terminate": lambda link: link.client.terminate(now=NOW),
    "chat text": lambda link: link.client.send_text("hello", now=NOW),
    "answer": lambda link: link.client.answer(ANSWER, now=NOW),
    "tool response": lambda link: link.client.reply_to_tool(link.pending_tool(), 1, now=NOW),
}
#: What the server app can send (``offer`` is a repeat once an offer was made).
SERVER: Mapping[str, Command] = {
    "event connection": lambda link: link.server.accept(job_id="job-1", now=NOW),
    "event": lambda link: link.server.send_event("opened", now=NOW),
    "text": lambda link: link.server.send_text("Hi", now=NOW),
    "user text": lambda link: link.server.send_text("hello", source="user", now=NOW),
    "offer": lambda link: link.server.offer(OFFER, now=NOW),
    "new offer": lambda link: link.server.offer(NEW_OFFER, now=NOW),
    "tool request": lambda link: link.server.request_tool("t-2", "lookup", {}, now=NOW),
    "result": lambda link: link.server.end(now=NOW),
    "error": lambda link: link.server.send_error("Invalid token", now=NOW),
}

_STEPS: Mapping[str, Command] = {
    "initialize": lambda link: link.client.initialize(link.call_type, now=NOW),
    "accept": SERVER["event connection"],
    "tool": lambda link: link.server.request_tool("t-1", "lookup", {}, now=NOW),
    "offer": SERVER["offer"],
    "answer": CLIENT["answer"],
    "terminate": CLIENT["terminate"],
    "result": SERVER["result"],
    "error": SERVER["error"],
}
_CHAT_ACTIVE = ["initialize", "accept", "tool"]
_VOICE_ACTIVE = ["initialize", "accept", "tool", "offer", "answer"]
#: Healthy histories, step by step; a tool request is left pending wherever one can be.
HISTORIES: Mapping[History, Sequence[str]] = {
    (CallType.CHAT, "awaiting initialize"): [],
    (CallType.CHAT, "awaiting session"): ["initialize"],
    (CallType.CHAT, "active"): _CHAT_ACTIVE,
    (CallType.CHAT, "terminating early"): ["initialize", "terminate"],
    (CallType.CHAT, "terminating"): [*_CHAT_ACTIVE, "terminate"],
    (CallType.CHAT, "ended"): [*_CHAT_ACTIVE, "result"],
    (CallType.CHAT, "failed"): [*_CHAT_ACTIVE, "error"],
    (CallType.WEB_CALL, "awaiting session"): ["initialize"],
    (CallType.WEB_CALL, "awaiting offer"): ["initialize", "accept", "tool"],
    (CallType.WEB_CALL, "answering"): ["initialize", "accept", "tool", "offer"],
    (CallType.WEB_CALL, "active"): _VOICE_ACTIVE,
    (CallType.WEB_CALL, "terminating early"): ["initialize", "terminate"],
    (CallType.WEB_CALL, "terminating before the offer"): [
        "initialize",
        "accept",
        "tool",
        "terminate",
    ],
    (CallType.WEB_CALL, "terminating while answering"): [
        "initialize",
        "accept",
        "tool",
        "offer",
        "terminate",
    ],
    (CallType.WEB_CALL, "terminating when active"): [*_VOICE_ACTIVE, "terminate"],
    (CallType.WEB_CALL, "ended"): [*_VOICE_ACTIVE, "result"],
    (CallType.WEB_CALL, "failed"): [*_VOICE_ACTIVE, "error"],
}


def setup(history: History) -> Link:
    """A link whose two ends are at the end of ``history``, in the same state."""
    link = Link(history[0])
    for step in HISTORIES[history]:
        _STEPS[step](link)
        link.drain()
    assert link.client.state is link.server.state, history
    assert link.violations() == [], history
    return link


def allowed(history: History, command: Command) -> bool:
    """Whether ``command`` is allowed at the end of ``history``."""
    link = setup(history)
    try:
        command(link)
    except LocalProtocolError:
        return False
    return True
