"""Signed 16-bit PCM arithmetic without numpy: levels, silence, interleaving.

The stdlib ``array`` does the work; a 20 ms frame is under a thousand samples,
so nothing here needs vectorising, and the package stays free of numpy.
"""

from __future__ import annotations

import math
import sys
from array import array
from typing import Final

__all__ = ["FULL_SCALE", "interleave", "rms", "silence"]

#: The magnitude of a full-scale signed 16-bit sample.
FULL_SCALE: Final = 32768.0

#: PCM on the wire and in WAV files is little-endian; ``array`` uses the host's order.
_SWAP: Final = sys.byteorder == "big"


def _samples(pcm: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if _SWAP:
        samples.byteswap()
    return samples


def rms(pcm: bytes) -> float:
    """The root-mean-square level of s16le PCM, as a fraction of full scale (0 to 1).

    Args:
        pcm: signed 16-bit little-endian samples (any channel count).

    Returns:
        0.0 for empty input.
    """
    samples = _samples(pcm)
    if not samples:
        return 0.0
    return math.sqrt(math.fsum(s * s for s in samples) / len(samples)) / FULL_SCALE


def silence(samples: int, channels: int = 1) -> bytes:
    """``samples`` frames of digital silence."""
    return bytes(2 * samples * channels)


def interleave(left: bytes, right: bytes) -> bytes:
    """Two mono s16 channels of the same length as one stereo stream (L R L R ...).

    Byte order does not matter here: whole 16-bit samples are moved, never read.
    """
    if len(left) != len(right):
        raise ValueError(f"channels differ in length: {len(left)} and {len(right)} bytes")
    stereo = array("h", bytes(2 * len(left)))
    stereo[0::2] = array("h", left)
    stereo[1::2] = array("h", right)
    return stereo.tobytes()
