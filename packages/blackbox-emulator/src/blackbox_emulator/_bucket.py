"""A token bucket: how fast one connection's frames are read.

Sans-IO like the protocol core: the caller passes the time (any monotonic
clock) and does the waiting. A frame costs one token, plus one for every full
``FRAME_COST_UNIT`` characters, so a client sending large frames is held to
the same pace in characters as one sending many small ones.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FRAME_COST_UNIT", "TokenBucket", "frame_cost"]

#: Characters (bytes, for binary frames) that cost one more token, past the first.
FRAME_COST_UNIT: Final = 64 * 1024


def frame_cost(frame: str | bytes) -> int:
    """The tokens a frame costs: 1, plus 1 per full ``FRAME_COST_UNIT`` of it."""
    return 1 + len(frame) // FRAME_COST_UNIT


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; it starts full.

    A cost is taken after the frame was read, so the bucket can go below
    zero (a large frame): the next frame then waits until it is back to one.

    Args:
        rate: tokens added a second; > 0.
        burst: the most tokens held; >= 1.
        now: the current time, in seconds.
    """

    def __init__(self, rate: float, burst: int, *, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def delay(self, *, now: float) -> float:
        """Seconds until a token is there: 0 when one is now."""
        self._refill(now)
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self._rate

    def take(self, cost: int, *, now: float) -> None:
        """Spend ``cost`` tokens (a frame that was read), even below zero."""
        self._refill(now)
        self._tokens -= cost

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._updated = now
