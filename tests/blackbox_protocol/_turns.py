"""The turn events, for tests of the state machine that look at everything else."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from blackbox_protocol import Event, ReplyEnded, ReplyStarted, UserTurnEnded

__all__ = ["TURN_EVENTS", "without_turns"]

#: What the turn tracker adds to a connection's events.
TURN_EVENTS: Final = (ReplyStarted, ReplyEnded, UserTurnEnded)


def without_turns(events: Iterable[Event]) -> list[Event]:
    """``events`` without the turn tracker's (whose own tests check them)."""
    return [event for event in events if not isinstance(event, TURN_EVENTS)]
