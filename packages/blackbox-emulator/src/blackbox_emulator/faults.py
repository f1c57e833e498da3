"""Fault injection: the ways an emulator can misbehave, one per run.

Each fault acts at one point of a conversation (after ``initialize``, after
``event connection``, after the agent's text). The voice faults (no offer, a
second offer, an unparseable offer, ICE that never connects) act at the
offer; a voice fault leaves chat conversations alone.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Final

from blackbox_protocol import format_timestamp

__all__ = ["DUPLICATE_OFFER_AFTER", "HUGE_FRAME_CHARS", "Fault", "garbage_frames"]

#: The size of the ``huge`` fault's frame: twice the SDK's default 8 MiB limit.
HUGE_FRAME_CHARS: Final = 16 * 1024 * 1024 + 1024
#: Seconds after the offer that the ``duplicate-offer`` fault sends it again.
DUPLICATE_OFFER_AFTER: Final = 0.1


class Fault(StrEnum):
    """A misbehaviour of the emulated service; its value is its name on the command line."""

    #: After ``event connection`` and the first agent text, the TCP connection
    #: is aborted: no close frame, as a network failure or a crashed server.
    DROP = "drop"
    #: Among the normal replies: a non-JSON frame, a JSON non-object, a frame
    #: of an unknown type and a binary frame. The conversation otherwise completes.
    GARBAGE = "garbage"
    #: The conversation's result, then the TCP connection aborted with no close
    #: frame (1006), as the live service ends a voice call: here a chat's
    #: socket ends so too. (A voice call ends so without it, unless
    #: ``clean_voice_close``.)
    DROP_AFTER_RESULT = "drop-after-result"
    #: After reading ``initialize``, nothing at all is sent, and the socket is
    #: never closed (until the emulator stops).
    SILENCE = "silence"
    #: After ``event connection``, one valid ``text`` frame of 16 MiB and more;
    #: then the conversation goes on.
    HUGE = "huge"
    #: After ``initialize``, the error frame ``Web integration is not enabled``,
    #: then the close (1008), as for a disabled integration.
    ERROR = "error"
    #: Voice: no ``sdpInvite`` is ever sent; the rest of the conversation goes
    #: on (``terminate`` is answered). A client's offer timeout must fire.
    NO_OFFER = "no-offer"
    #: Voice: once the answer is applied and the media connected, a second
    #: ``sdpInvite`` (the same offer, its session version one higher), which
    #: the protocol has no place for; the call otherwise goes on. It models a
    #: server bug, not a renegotiation: an answer to it is a violation, not applied.
    SECOND_OFFER = "second-offer"
    #: Voice: the very same ``sdpInvite`` again (the same SDP, under the same
    #: key) ``DUPLICATE_OFFER_AFTER`` seconds after the first, as a relay
    #: that retransmits; the call otherwise goes on. The client must answer
    #: once and keep the call.
    DUPLICATE_OFFER = "duplicate-offer"
    #: Voice: the ``sdpInvite`` carries text no SDP parser takes (it starts
    #: like an SDP, but its ``m=`` line has codec names for payload types);
    #: no media peer is made.
    BAD_OFFER = "bad-offer"
    #: Voice: a real offer whose only candidate is a UDP port that swallows
    #: every packet, and the emulator never checks the answer's candidates:
    #: ICE never connects. The agent's text still comes, unvoiced.
    NO_ICE = "no-ice"

    @classmethod
    def parse(cls, value: Fault | str | None) -> Fault | None:
        """A fault from its name (``"drop"``, ``"no-ice"``, ``"no_ice"``), a ``Fault``, or ``None``.

        Raises:
            ValueError: no fault has that name; the message lists them.
        """
        if value is None or isinstance(value, Fault):
            return value
        try:
            return cls(value.strip().lower().replace("_", "-"))
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
