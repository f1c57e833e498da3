"""Bring any ``AudioFrame`` to mono s16 PCM at one sample rate (PyAV's resampler)."""

from __future__ import annotations

import av
from blackbox_protocol import AudioFrame

__all__ = ["MonoConverter"]


def _layout(channels: int) -> str:
    # FFmpeg names the two common layouts; any other count is "<n>c" (unordered).
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


class MonoConverter:
    """Converts a stream of frames to mono s16le at ``sample_rate``.

    Frames already in that shape pass through untouched (the usual case: the
    session delivers mono at the rate it was asked for). Others go through a
    resampler, which keeps state between frames so that their joins are seamless;
    it is rebuilt when the input's rate or channel count changes.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._input: tuple[int, int] | None = None
        self._resampler: av.AudioResampler | None = None

    def convert(self, frame: AudioFrame) -> bytes:
        """The frame's audio as mono s16le at ``sample_rate`` (possibly empty: resampler delay)."""
        if frame.sample_rate == self.sample_rate and frame.channels == 1:
            return frame.pcm
        if self._resampler is None or self._input != (frame.sample_rate, frame.channels):
            self._input = (frame.sample_rate, frame.channels)
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.sample_rate)
        samples = frame.samples
        if samples == 0:
            return b""
        source = av.AudioFrame(format="s16", layout=_layout(frame.channels), samples=samples)
        source.sample_rate = frame.sample_rate
        source.planes[0].update(frame.pcm[: 2 * samples * frame.channels])
        return b"".join(_pcm_of(out) for out in self._resampler.resample(source))

    def flush(self) -> bytes:
        """What the resampler still holds; call once at the end of the stream."""
        if self._resampler is None:
            return b""
        resampler, self._resampler, self._input = self._resampler, None, None
        return b"".join(_pcm_of(out) for out in resampler.resample(None))


def _pcm_of(frame: av.AudioFrame) -> bytes:
    """A packed mono s16 frame's samples (its plane may carry alignment padding)."""
    return bytes(frame.planes[0])[: 2 * frame.samples]
