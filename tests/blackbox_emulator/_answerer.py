"""A plain aiortc answerer for the voice tests: the caller's side, without the SDK's media backend.

It answers the emulator's offer as any WebRTC client would (no STUN), sends a
tone (or silence until told), and keeps what it hears, resampled to 8 kHz
mono, with the time each frame arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from fractions import Fraction
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler
from blackbox_emulator import Emulator, EmulatorThread
from blackbox_emulator.speech import dominant_frequencies
from blackbox_protocol import OfferReceived

from tests.blackbox_emulator._client import Client, open_client

__all__ = ["RATE", "Answerer", "ToneTrack", "tone_at", "until", "voice_call", "with_profile"]

#: The rate of everything the answerer sends and keeps.
RATE: Final = 8000
_FRAME: Final = RATE // 50


def with_profile(sdp: str, profile: str) -> str:
    """``sdp`` with the transport profile of every ``m=`` line replaced (``RTP/SAVP``)."""
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            kind, port, _, *formats = line.split()
            line = " ".join([kind, port, profile, *formats])
        lines.append(line)
    return "\r\n".join(lines)


class ToneTrack(MediaStreamTrack):
    """A caller that says a sine tone, paced in real time.

    Args:
        frequency: the tone, Hz.
        playing: when it sounds; by default always. Given the time (monotonic
            seconds) a frame is sent, return whether the tone is on.
    """

    kind = "audio"

    def __init__(self, frequency: float, playing: Callable[[float], bool] | None = None) -> None:
        super().__init__()
        self._frequency = frequency
        self._playing = playing or (lambda _: True)
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._sent / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (self._sent + np.arange(_FRAME)) / RATE
        on = self._playing(time.monotonic())
        wave = 0.3 * np.sin(2 * np.pi * self._frequency * t) if on else np.zeros(_FRAME)
        samples = (wave * 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent
        frame.time_base = Fraction(1, RATE)
        self._sent += _FRAME
        return frame


class Answerer:
    """The caller's WebRTC peer.

    Args:
        track: what it sends; by default a 440 Hz tone.
    """

    def __init__(self, track: MediaStreamTrack | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = track if track is not None else ToneTrack(440.0)
        #: What it heard: (arrival time, monotonic seconds; 8 kHz mono samples).
        self.frames: list[tuple[float, npt.NDArray[np.int16]]] = []
        self._resampler = AudioResampler(format="s16", layout="mono", rate=RATE)
        self._listener: asyncio.Task[None] | None = None

    async def answer(self, offer: str) -> str:
        """Take the offer, make the answer (ICE gathered), start listening; the answer SDP."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        self.pc.addTrack(self.track)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        remote = self.pc.getTransceivers()[0].receiver.track
        self._listener = asyncio.create_task(self._listen(remote))
        return self.pc.localDescription.sdp

    async def connected(self, timeout: float = 5.0) -> None:
        """Wait until the connection is up; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout):
            while self.pc.connectionState != "connected":
                await asyncio.sleep(0.01)

    def heard(self, since: float = 0.0) -> npt.NDArray[np.int16]:
        """Everything heard (arrived at or after ``since``), in one array."""
        chunks = [samples for at, samples in self.frames if at >= since]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    async def aclose(self) -> None:
        self.track.stop()
        await self.pc.close()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])

    async def _listen(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                for part in self._resampler.resample(frame):
                    samples = part.to_ndarray().reshape(-1).astype(np.int16)
                    self.frames.append((time.monotonic(), samples))
        except MediaStreamError:
            return


def tone_at(samples: npt.NDArray[np.int16], frequency: float, *, tolerance: float = 15.0) -> bool:
    """Whether some window of ``samples`` (8 kHz) has its peak at ``frequency``."""
    return any(abs(found - frequency) <= tolerance for found in dominant_frequencies(samples, RATE))


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds; ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@asynccontextmanager
async def voice_call(
    emulator: Emulator | EmulatorThread,
    answerer: Answerer | None = None,
    *,
    edit_answer: Callable[[str], str] = lambda sdp: sdp,
    additional_data: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[Client, Answerer, str]]:
    """A ``webCall`` to ``emulator``, answered and connected: the client, the answerer, the offer.

    ``edit_answer`` changes the answer before it is sent (a SIP-style client's).
    The answerer is closed at the end; the client's socket too.
    """
    answerer = answerer if answerer is not None else Answerer()
    try:
        async with open_client(emulator.url_for(emulator.token)) as client:
            await client.initialize("webCall", additional_data=additional_data)
            offer = await client.wait_for(OfferReceived)
            await client.answer(edit_answer(await answerer.answer(offer.sdp)))
            yield client, answerer, offer.sdp
    finally:
        await answerer.aclose()
