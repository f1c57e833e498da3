"""Test audio: tones to play, and the frequency analysis that checks what arrived."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

import numpy as np
from blackbox_protocol import AudioFrame

#: The tone each side plays: distinct, and both well inside G.711's 4 kHz band.
CALLER_TONE = 440.0
AGENT_TONE = 1000.0


def sine(frequency: float, rate: int, start: int, count: int, channels: int = 1) -> bytes:
    """``count`` samples of a sine (amplitude 8000), from sample ``start``, as s16le."""
    out = array("h")
    for n in range(start, start + count):
        value = round(8000 * math.sin(2 * math.pi * frequency * n / rate))
        out.extend([value] * channels)
    return out.tobytes()


def voice(rate: int, start: int, count: int) -> bytes:
    """``count`` samples of a voice-like sound (peak about 7700), from sample ``start``, as s16le.

    Eleven harmonics of a pitch that wanders around 140 Hz, in syllables of
    a third of a second: broadband and changing, as speech is. An echo
    canceller needs that; a steady sine is the case it cannot tell apart
    from the caller's own voice.
    """
    t = np.arange(start, start + count) / rate
    # The phase of a pitch of 140 + 30 sin(2 pi 0.7 t) Hz, integrated in closed form.
    phase = 2 * np.pi * (140 * t - 30 / (2 * np.pi * 0.7) * np.cos(2 * np.pi * 0.7 * t))
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    return np.round(4500 * wave * envelope).astype("<i2").tobytes()


class ToneSource:
    """An ``AudioSource`` playing a sine, 20 ms per read, for as long as it is read."""

    def __init__(self, frequency: float, rate: int = 48000, channels: int = 1) -> None:
        self.frequency = frequency
        self.rate = rate
        self.channels = channels
        self.reads = 0
        self.closed = False

    async def read(self) -> AudioFrame | None:
        count = self.rate // 50
        pcm = sine(self.frequency, self.rate, self.reads * count, count, self.channels)
        self.reads += 1
        return AudioFrame(pcm, self.rate, self.channels)

    async def close(self) -> None:
        self.closed = True


class RecordingSink:
    """An ``AudioSink`` keeping every frame."""

    def __init__(self) -> None:
        self.frames: list[AudioFrame] = []
        self.closes = 0

    async def write(self, frame: AudioFrame) -> None:
        self.frames.append(frame)

    async def close(self) -> None:
        self.closes += 1


def samples(frames: Iterable[AudioFrame]) -> np.ndarray:
    """The frames' PCM as one float array (mono frames only)."""
    frames = list(frames)
    assert all(frame.channels == 1 for frame in frames)
    return np.frombuffer(b"".join(frame.pcm for frame in frames), dtype="<i2").astype(float)


def peak_frequency(signal: np.ndarray, rate: int) -> float:
    """The frequency with the most energy in ``signal``, in Hz."""
    assert len(signal) > rate // 10, "too little audio to analyse"
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * rate / len(signal))


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(signal**2))) if len(signal) else 0.0
