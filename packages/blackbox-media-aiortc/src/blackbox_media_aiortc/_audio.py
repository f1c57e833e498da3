"""PCM between our ``AudioFrame`` and PyAV's: conversion and resampling to mono s16."""

from __future__ import annotations

import fractions

import av
from blackbox_protocol import AudioFrame

__all__ = ["MonoResampler", "to_av", "to_pcm"]


def to_av(frame: AudioFrame, pts: int | None = None) -> av.AudioFrame:
    """Our frame as a PyAV frame (packed s16), with ``pts`` in 1/sample_rate units."""
    out = av.AudioFrame(format="s16", layout=f"{frame.channels}c", samples=frame.samples)
    out.planes[0].update(frame.pcm[: frame.samples * 2 * frame.channels])
    out.sample_rate = frame.sample_rate
    out.time_base = fractions.Fraction(1, frame.sample_rate)
    out.pts = pts
    return out


def to_pcm(frame: av.AudioFrame) -> bytes:
    """A packed s16 PyAV frame's samples (its plane may be padded past them)."""
    return bytes(frame.planes[0])[: frame.samples * 2 * len(frame.layout.channels)]


class MonoResampler:
    """Turns audio of any rate, layout and sample format into mono s16 PCM at one rate.

    PyAV's resampler is fixed to the first input's format; a source whose
    format changes mid-call gets a new one.

    Args:
        sample_rate: the rate of the output.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None

    def resample(self, frame: av.AudioFrame) -> bytes:
        """The frame's audio as mono s16le PCM at ``sample_rate`` (possibly empty: filter delay)."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key == ("s16", "mono", self.sample_rate):
            return to_pcm(frame)
        if self._resampler is None or key != self._input:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
            self._input = key
        return b"".join(to_pcm(out) for out in self._resampler.resample(frame))

    def resample_ours(self, frame: AudioFrame) -> bytes:
        """Our frame's audio as mono s16le PCM at ``sample_rate``."""
        if frame.channels == 1 and frame.sample_rate == self.sample_rate:
            return frame.pcm[: frame.samples * 2]
        return self.resample(to_av(frame))
