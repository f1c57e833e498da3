"""The live service's strictness: the client frames it closes the socket for, as one table.

The live service closes the socket with **1007** when a client's frame does not
match its schema (PROTOCOL.md, section 6), where the SDK's core is forgiving:
it reports such a frame as a ``ProtocolViolation`` and goes on. The emulator
is as strict as the service, so that a client with such a bug fails against
it before it fails in production. Each rule is one row of ``RULES``: what it
checks on the client's frame (the parsed JSON value), the close code, the
reason, and whether the close was seen live or is assumed from the schema.

The check runs on every frame the client sends, **before** the core sees it
(``StrictSocket``, the conversation's transport): a frame the service rejects
never reaches the agent, so the emulator sends nothing in answer to it (a
check after the core would let the agent answer, say, a tool response
without ``channelId`` before the close). Frames over the size limit are left
to the core, which answers them with the service's ``Too large message``.

``Emulator(lenient=True)`` relaxes every rule: the frame goes on to the core
as before, and each relaxation is logged at WARNING once per conversation and rule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from blackbox_emulator._socket import RecordedSocket
from blackbox_emulator.records import ConversationRecord

__all__ = ["INVALID_PAYLOAD", "RULES", "Rule", "StrictSocket", "broken_rules"]

_log = logging.getLogger("blackbox_emulator.strictness")

#: The close code the live service sends for a frame its schema rejects.
INVALID_PAYLOAD: Final = 1007


class _NotJson:
    """The parsed value of a frame that is not JSON text (binary, or a syntax error)."""

    def __repr__(self) -> str:
        return "<not JSON>"


_NOT_JSON: Final = _NotJson()


@dataclass(frozen=True)
class Rule:
    """One check of the live service's schema on a client's frame.

    Attributes:
        name: the rule's name, which the close reason starts with, e.g.
            ``incomingChatMessage.content``.
        message_type: the ``type`` of the frames it checks; ``None``: every frame.
        check: true when the frame (the parsed JSON value; a dict, for a
            rule with a ``message_type``) passes.
        reason: the close reason: says what the rule requires.
        seen_live: whether the live service was seen closing for it
            (PROTOCOL.md); otherwise assumed from the schema as documented.
        code: the close code.
    """

    name: str
    message_type: str | None
    check: Callable[[Any], bool]
    reason: str
    seen_live: bool
    code: int = INVALID_PAYLOAD

    def applies_to(self, frame: Any) -> bool:
        """Whether the rule checks ``frame`` (a parsed value)."""
        if self.message_type is None:
            return True
        return isinstance(frame, dict) and frame.get("type") == self.message_type


def _member(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...``, or ``None`` where a step is not an object or absent."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_string(*path: str) -> Callable[[Any], bool]:
    return lambda frame: isinstance(_member(frame, *path), str)


def _is_object(*path: str) -> Callable[[Any], bool]:
    return lambda frame: isinstance(_member(frame, *path), dict)


#: The rules, checked in this order; the first a frame breaks closes the socket.
#: Not here, because the service answers them otherwise (the core does the
#: same): a frame over the size limit (``Too large message``), a second
#: ``initialize`` (``Multiple init messages received``), no ``initialize`` in
#: time (``Init message not received``). Not checked, for want of evidence: an
#: unknown ``type`` (the core reports it), a missing ``timestamp``, the value of
#: ``callType``, a missing ``websocketToolResponse.content.result``.
RULES: Final[tuple[Rule, ...]] = (
    Rule(
        name="frame",
        message_type=None,
        check=lambda frame: isinstance(frame, dict),
        reason="frame must be a JSON object in a text frame",
        seen_live=False,
    ),
    Rule(
        name="type",
        message_type=None,
        check=_is_string("type"),
        reason="type must be a string",
        seen_live=False,
    ),
    Rule(
        name="channelId",
        message_type=None,
        check=lambda frame: _member(frame, "channelId") is None or _is_string("channelId")(frame),
        reason="channelId must be a string or null",
        seen_live=False,
    ),
    Rule(
        name="initialize.request",
        message_type="initialize",
        check=_is_object("request"),
        reason="initialize.request must be an object",
        seen_live=False,
    ),
    Rule(
        name="initialize.request.callType",
        message_type="initialize",
        # Without a request, only ``initialize.request`` is broken.
        check=lambda frame: (
            not _is_object("request")(frame) or _is_string("request", "callType")(frame)
        ),
        reason="initialize.request.callType must be a string",
        seen_live=False,
    ),
    Rule(
        name="incomingChatMessage.content",
        message_type="incomingChatMessage",
        check=_is_string("content"),
        reason="incomingChatMessage.content must be a string",
        seen_live=True,
    ),
    Rule(
        name="sdpAnswer.data.sdpAnswer",
        message_type="sdpAnswer",
        check=_is_string("data", "sdpAnswer"),
        reason="sdpAnswer.data.sdpAnswer must be a string",
        seen_live=False,
    ),
    Rule(
        name="websocketToolResponse.channelId",
        message_type="websocketToolResponse",
        check=lambda frame: "channelId" in frame,
        reason="websocketToolResponse.channelId is required (null will do)",
        seen_live=True,
    ),
    Rule(
        name="websocketToolResponse.content.id",
        message_type="websocketToolResponse",
        check=_is_string("content", "id"),
        reason="websocketToolResponse.content.id must be a string",
        seen_live=False,
    ),
)


def _parsed(frame: str | bytes) -> Any:
    if isinstance(frame, bytes):
        return _NOT_JSON
    try:
        return json.loads(frame)
    except ValueError:
        return _NOT_JSON


def broken_rules(frame: str | bytes) -> list[Rule]:
    """The rules of ``RULES`` that ``frame`` breaks, in the table's order.

    A frame that is not an object breaks ``frame`` alone: the rules on its
    fields do not apply to it.
    """
    try:
        value = _parsed(frame)
    except RecursionError:
        # Valid JSON nested past Python's limit: the core reports it.
        return []
    broken = []
    for rule in RULES:
        if rule.applies_to(value) and not rule.check(value):
            broken.append(rule)
            if rule.name == "frame":
                break
    return broken


class StrictSocket:
    """A conversation's transport that closes the socket (1007) for a frame breaking a rule.

    It wraps the ``RecordedSocket`` a conversation's ``Driver`` reads: a frame
    that breaks a rule of ``RULES`` is recorded (as every frame is), the
    socket is closed with the rule's code and reason, the record notes the
    reason, and the driver is told the socket closed. Lenient, every frame
    goes on; each rule relaxed is logged once.

    Args:
        socket: the conversation's socket.
        record: the conversation's record.
        lenient: relax every rule.
        max_frame_size: frames longer than this, in characters, are left to
            the core (``Too large message``).
    """

    def __init__(
        self,
        socket: RecordedSocket,
        record: ConversationRecord,
        *,
        lenient: bool,
        max_frame_size: int,
    ) -> None:
        self._socket = socket
        self._record = record
        self._lenient = lenient
        self._max_frame_size = max_frame_size
        #: The rules relaxed so far (each logged once).
        self._relaxed: set[str] = set()

    async def receive(self) -> str | bytes | None:
        """The next frame that breaks no rule (or any, lenient); ``None`` once closed.

        Raises:
            Stalled: the close for a broken rule waited ``idle_timeout``.
        """
        frame = await self._socket.receive()
        if frame is None or len(frame) > self._max_frame_size:
            return frame
        broken = broken_rules(frame)
        if not broken:
            return frame
        if self._lenient:
            for rule in broken:
                if rule.name not in self._relaxed:
                    self._relaxed.add(rule.name)
                    _log.warning(
                        "conversation %d: lenient: %s relaxed", self._record.number, rule.name
                    )
            return frame
        rule = broken[0]
        _log.warning(
            "conversation %d: the client broke the protocol: closed %d: %s",
            self._record.number,
            rule.code,
            rule.reason,
        )
        self._record.close_reason = rule.reason
        await self._socket.close(rule.code, rule.reason)
        return None

    async def send(self, frame: str) -> None:
        """Send ``frame`` (see ``RecordedSocket.send``)."""
        await self._socket.send(frame)

    @property
    def close_code(self) -> int | None:
        """The client's close code; ``None`` when no close frame came."""
        return self._socket.close_code

    @property
    def close_reason(self) -> str:
        """The client's close reason."""
        return self._socket.close_reason
