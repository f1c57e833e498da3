"""What a session does so that the agent does not hear itself: the echo policy.

With a headset, or files, nothing is needed (``FULL_DUPLEX``: the microphone
is always sent, so the caller can talk over the agent). With loudspeakers and
a microphone in the same room, the agent's voice comes back through the
microphone: ``HALF_DUPLEX`` mutes what is sent while the agent is heard, and
``ECHO_CANCELLATION`` removes the agent's voice from the microphone's signal
with WebRTC's echo canceller (the ``aec`` extra: see ``blackbox_media_aiortc.aec``),
so the caller can still barge in. See docs/voice-aiortc.md.
"""

from __future__ import annotations

import math
from array import array
from enum import Enum
from typing import Final

__all__ = [
    "HALF_DUPLEX_HANG",
    "HALF_DUPLEX_THRESHOLD_DBFS",
    "EchoPolicy",
    "HalfDuplexGate",
    "level_dbfs",
]

#: Received audio louder than this (RMS, dB below full scale) counts as the agent speaking.
HALF_DUPLEX_THRESHOLD_DBFS: Final = -40.0
#: How long the source stays muted after the agent was last heard, in seconds:
#: long enough to bridge the pauses between words, and the echo's own tail.
HALF_DUPLEX_HANG: Final = 0.5


class EchoPolicy(Enum):
    """How a session keeps the agent's audio from coming back to it.

    ``NONE`` is the former name of ``FULL_DUPLEX`` (the same member), and
    ``EchoPolicy("none")`` still gives it.
    """

    #: Send the source as it is, always: barge-in works. For headphones,
    #: files, or a microphone that cannot hear the speaker.
    FULL_DUPLEX = "full-duplex"
    #: ``FULL_DUPLEX``'s former name, kept as an alias.
    NONE = "full-duplex"  # noqa: PIE796 -- the alias is the point
    #: Send silence while the agent is heard, and for ``HALF_DUPLEX_HANG`` after:
    #: no echo, but no barge-in either. Loudspeakers, no extra needed.
    HALF_DUPLEX = "half-duplex"
    #: Cancel the agent's echo in the source with WebRTC's AEC3 and send the
    #: rest, always: loudspeakers with barge-in. Needs the ``aec`` extra.
    ECHO_CANCELLATION = "echo-cancellation"

    @classmethod
    def _missing_(cls, value: object) -> EchoPolicy | None:
        return cls.FULL_DUPLEX if value == "none" else None


def level_dbfs(pcm: bytes) -> float:
    """The RMS level of s16le PCM, in dB below full scale (``-inf`` for digital silence)."""
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if not samples:
        return -math.inf
    mean_square = sum(s * s for s in samples) / len(samples)
    if mean_square == 0:
        return -math.inf
    return 10 * math.log10(mean_square / (32768.0 * 32768.0))


class HalfDuplexGate:
    """Decides, from the received audio's level, whether the source is muted now.

    Time is passed in (seconds on any monotonic clock), so the decision is
    testable without a clock.

    Args:
        threshold_dbfs: the level above which the agent counts as speaking.
        hang: seconds the gate stays closed after the agent was last heard.
    """

    def __init__(
        self, threshold_dbfs: float = HALF_DUPLEX_THRESHOLD_DBFS, hang: float = HALF_DUPLEX_HANG
    ) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.hang = hang
        self._last_heard = -math.inf

    def heard(self, pcm: bytes, now: float) -> None:
        """Take note of received audio (s16le PCM) arriving at ``now``."""
        if level_dbfs(pcm) > self.threshold_dbfs:
            self._last_heard = now

    def muted(self, now: float) -> bool:
        """Whether the source must be muted at ``now``."""
        return now - self._last_heard < self.hang
