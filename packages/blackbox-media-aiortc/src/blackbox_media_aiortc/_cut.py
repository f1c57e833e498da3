"""After ``interrupt()``: which of the agent's received audio still reaches the sink."""

from __future__ import annotations

import math
from typing import Final

from blackbox_media_aiortc.echo import HALF_DUPLEX_THRESHOLD_DBFS, level_dbfs

__all__ = ["INTERRUPT_HANG", "UtteranceCut"]

#: How long the agent must be quiet (or send nothing) for an interrupted
#: utterance to be over, in seconds: longer than the pauses between its
#: sentences, as a turn script's ``silence_after_agent`` is.
INTERRUPT_HANG: Final = 0.8


class UtteranceCut:
    """Cuts the agent's current utterance from ``interrupt()`` until it goes quiet.

    Quiet is received audio at or below ``threshold_dbfs`` (the half-duplex
    gate's level for "the agent is speaking"), or no audio at all, for
    ``hang`` seconds. Time is passed in (seconds on any monotonic clock).

    Args:
        threshold_dbfs: the level above which the agent counts as speaking.
        hang: seconds of quiet that end the cut.
    """

    def __init__(
        self, threshold_dbfs: float = HALF_DUPLEX_THRESHOLD_DBFS, hang: float = INTERRUPT_HANG
    ) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.hang = hang
        self.cutting = False
        """Whether received audio is being cut now."""
        self._last_loud = -math.inf

    def interrupt(self, now: float) -> None:
        """Start cutting (again): the agent counts as speaking at ``now``."""
        self.cutting = True
        self._last_loud = now

    def passes(self, pcm: bytes, now: float) -> bool:
        """Whether received audio (s16le PCM) arriving at ``now`` reaches the sink."""
        if not self.cutting:
            return True
        # The gap is checked first: after a stretch with no audio at all, a
        # loud frame is the agent's next utterance, not the cut one going on.
        if now - self._last_loud >= self.hang:
            self.cutting = False
            return True
        if level_dbfs(pcm) > self.threshold_dbfs:
            self._last_loud = now
        return False
