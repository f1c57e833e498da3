"""A plain aiortc peer that offers, as the service does: plays a tone, keeps what it hears."""

from __future__ import annotations

import asyncio
import fractions
import time
from types import TracebackType
from typing import Self

import av
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.blackbox_media_file._audio import tone

__all__ = ["OfferingPeer"]

RATE = 48000


class ToneTrack(MediaStreamTrack):
    """An audio track playing a continuous tone, paced in real time, 20 ms per frame."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._index * 0.02 - time.monotonic()))
        samples = tone(self.frequency, 0.02, RATE, start=self._index * 960)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = self._index * 960
        self._index += 1
        return frame


class OfferingPeer:
    """The far end of a call: offers, plays ``frequency``, records what it receives (mono)."""

    def __init__(self, frequency: float) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ToneTrack(frequency))
        self.received: list[npt.NDArray[np.int16]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    @property
    def heard_seconds(self) -> float:
        return sum(len(chunk) for chunk in self.received) / RATE

    def heard(self) -> npt.NDArray[np.int16]:
        return np.concatenate(self.received) if self.received else np.zeros(0, np.int16)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._keep(track)))

    async def _keep(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            for out in resampler.resample(frame):
                self.received.append(out.to_ndarray().reshape(-1).astype(np.int16))
