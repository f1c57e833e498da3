"""Fault injection: the ways an emulator can misbehave, one per run.

Each fault acts at one point of a conversation (after ``initialize``, after
``event connection``, after the agent's text). The voice faults of the next
step (no offer, a second offer, an unparseable offer, ICE that never
connects) join this enum and act at the offer, the point the media step adds;
a voice fault leaves chat conversations alone.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Final

from blackbox_protocol import format_timestamp

__all__ = ["HUGE_FRAME_CHARS", "Fault", "garbage_frames"]

#: The size of the ``huge`` fault's frame: twice the SDK's default 8 MiB limit.
HUGE_FRAME_CHARS: Final = 16 * 1024 * 1024 + 1024


class Fault(StrEnum):
    """A misbehaviour of the emulated service; its value is its name on the command line."""

    #: After ``event connection`` and the first agent text, the TCP connection
    #: is aborted: no close frame, as a network failure or a crashed server.
    DROP = "drop"
    #: Among the normal replies: a non-JSON frame, a JSON non-object, a frame
    #: of an unknown type and a binary frame. The conversation otherwise completes.
    GARBAGE = "garbage"
    #: After reading ``initialize``, nothing at all is sent, and the socket is
    #: never closed (until the emulator stops).
    SILENCE = "silence"
    #: After ``event connection``, one valid ``text`` frame of 16 MiB and more;
    #: then the conversation goes on.
    HUGE = "huge"
    #: After ``initialize``, the error frame ``Web integration is not enabled``,
    #: then the close (1008), as for a disabled integration.
    ERROR = "error"

    @classmethod
    def parse(cls, value: Fault | str | None) -> Fault | None:
        """A fault from its name (``"drop"``), a ``Fault``, or ``None`` for none.

        Raises:
            ValueError: no fault has that name; the message lists them.
        """
        if value is None or isinstance(value, Fault):
            return value
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(fault.value for fault in cls)
            raise ValueError(f"unknown fault {value!r}; choose from {names}") from None


def garbage_frames(now: float) -> list[str | bytes]:
    """The frames the ``garbage`` fault slips among the replies, in order."""
    unknown = {
        "type": "futureFeature",
        "timestamp": format_timestamp(now),
        "channelId": None,
        "data": {"note": "a message type this client does not know yet"},
    }
    return [
        "this is not JSON {",
        "[1, 2, 3]",
        json.dumps(unknown, separators=(",", ":")),
        b"\x00\x01 a binary frame",
    ]
