"""The track aiortc sends: an ``AudioSource`` paced in real time, 20 ms at a time."""

from __future__ import annotations

import asyncio  # noqa: TID251 -- aiortc is asyncio-only: its sender awaits recv() on its loop
import fractions
import logging
from typing import TYPE_CHECKING, Final

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from blackbox_media_aiortc._audio import MonoResampler
from blackbox_media_aiortc.echo import HalfDuplexGate
from blackbox_media_aiortc.sources import AudioSource

if TYPE_CHECKING:
    from blackbox_media_aiortc.aec import EchoCanceller

__all__ = ["PTIME", "SourceTrack"]

logger = logging.getLogger("blackbox_media_aiortc")

#: The packet duration, in seconds: what browsers and SIP stacks send.
PTIME: Final = 0.020
#: Falling further behind the wall clock than this (a stalled loop) restarts
#: the pace from now, rather than bursting out the backlog.
_MAX_LAG: Final = 0.1


class SourceTrack(MediaStreamTrack):
    """An audio track reading an ``AudioSource``, sending silence when it has nothing.

    Each ``recv()`` waits for the wall-clock time of the next 20 ms packet,
    then reads the source until 20 ms are buffered or it returns ``None``
    (the rest of the packet is then silence). A source that raises is logged
    and read no more: the call goes on with silence. While ``muted``, the
    source is still read (a file plays on, a microphone keeps recording) and
    silence is sent in its place.

    Args:
        source: what to play, or ``None`` for silence throughout.
        sample_rate: the rate of the frames handed to the encoder.
        gate: with half duplex, mutes what is sent while the agent is heard
            (the source is still read, and what it gives is dropped).
        canceller: with echo cancellation, takes the agent's echo out of
            each packet before it is sent.
    """

    kind = "audio"

    def __init__(
        self,
        source: AudioSource | None,
        sample_rate: int,
        gate: HalfDuplexGate | None = None,
        canceller: EchoCanceller | None = None,
    ) -> None:
        super().__init__()
        self._source = source
        self._gate = gate
        self._canceller = canceller
        self._rate = sample_rate
        self._samples = round(sample_rate * PTIME)
        self._bytes = self._samples * 2
        self._resampler = MonoResampler(sample_rate)
        self._buffer = bytearray()
        self._start: float | None = None
        self._pts = 0
        self.sent_frames = 0
        """Packets handed to the encoder so far."""
        self.muted_frames = 0
        """Of those, how many the half-duplex gate replaced with silence."""
        self.muted = False
        """Whether to send silence in place of the source (the session's ``mute()``)."""

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms of audio, at its wall-clock time."""
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += self._samples
            wait = self._start + self._pts / self._rate - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -_MAX_LAG:
                self._start = loop.time() - self._pts / self._rate
        pcm = await self._next_packet()
        if self._canceller is not None:
            # Muted or not: the canceller keeps adapting to the room.
            pcm = self._canceller.near(pcm)
        if self._gate is not None and self._gate.muted(loop.time()):
            pcm = bytes(self._bytes)
            self.muted_frames += 1
        elif self.muted:
            pcm = bytes(self._bytes)
        self.sent_frames += 1
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(pcm)
        frame.sample_rate = self._rate
        frame.time_base = fractions.Fraction(1, self._rate)
        frame.pts = self._pts
        return frame

    async def _next_packet(self) -> bytes:
        while len(self._buffer) < self._bytes and self._source is not None:
            try:
                frame = await self._source.read()
            except Exception:
                logger.exception("the audio source failed; sending silence from now on")
                self._source = None
                break
            if frame is None:
                break
            self._buffer += self._resampler.resample_ours(frame)
        packet = bytes(self._buffer[: self._bytes])
        del self._buffer[: self._bytes]
        return packet + bytes(self._bytes - len(packet))
