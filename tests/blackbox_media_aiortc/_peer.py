"""The far end of a test call: a plain aiortc peer that offers, as the service does.

``browser`` style is aiortc's own offer (``UDP/TLS/RTP/SAVPF``, opus first,
BUNDLE). ``sip`` style rewrites it into the shape the live service sends (see
``voice-live.jsonl``): ``RTP/SAVP``, PCMU/PCMA plus telephone-event, no
BUNDLE, no mid/msid/ssrc, ICE credentials at session level. Since this peer is
aiortc underneath, it translates the answer back for itself (it needs its
``a=mid``), the way a SIP stack's own parser would simply not care.
"""

from __future__ import annotations

import asyncio
import fractions
import re
from collections.abc import Sequence
from typing import Literal

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.blackbox_media_aiortc._audio import AGENT_TONE, sine, voice

Style = Literal["browser", "sip"]

RATE = 48000


class ToneTrack(MediaStreamTrack):
    """Sends a sine (or, with ``frequency=None``, a voice-like sound) in 20 ms frames at
    real-time pace; silence outside ``windows`` (seconds from the start), if given."""

    kind = "audio"

    def __init__(
        self, frequency: float | None, windows: Sequence[tuple[float, float]] | None = None
    ) -> None:
        super().__init__()
        self.frequency = frequency
        self.windows = windows
        self.started: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self.started is None:
            self.started = loop.time()
        else:
            self._pts += RATE // 50
            await asyncio.sleep(max(0.0, self.started + self._pts / RATE - loop.time()))
        elapsed = self._pts / RATE
        playing = self.windows is None or any(a <= elapsed < b for a, b in self.windows)
        count = RATE // 50
        if not playing:
            pcm = bytes(2 * count)
        elif self.frequency is None:
            pcm = voice(RATE, self._pts, count)
        else:
            pcm = sine(self.frequency, RATE, self._pts, count)
        frame = av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(pcm)
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = self._pts
        return frame


class OfferingPeer:
    """The offering side: sends ``AGENT_TONE``, keeps what it receives with arrival times.

    ``window`` (or several ``windows``) limits when the agent speaks, in
    seconds from its track's start; ``voice`` sends a voice-like sound in
    place of the tone.
    """

    def __init__(
        self,
        style: Style = "browser",
        *,
        window: tuple[float, float] | None = None,
        windows: Sequence[tuple[float, float]] | None = None,
        voice: bool = False,
    ) -> None:
        self.style = style
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = ToneTrack(
            None if voice else AGENT_TONE, [window] if window is not None else windows
        )
        #: (loop time of arrival, mono samples at 48 kHz) per received frame.
        self.received: list[tuple[float, np.ndarray]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def offer(self) -> str:
        transceiver = self.pc.addTransceiver(self.track, direction="sendrecv")
        if self.style == "sip":
            g711 = [
                codec
                for codec in RTCRtpSender.getCapabilities("audio").codecs
                if codec.mimeType in ("audio/PCMU", "audio/PCMA")
            ]
            transceiver.setCodecPreferences(g711)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        return sip_style(sdp) if self.style == "sip" else sdp

    async def accept(self, answer: str) -> None:
        if self.style == "sip" and "a=mid:" not in answer:
            answer = re.sub(r"(m=audio [^\r\n]*\r\n)", r"\1a=mid:0\r\n", answer, count=1)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def received_since(self, start: float, end: float = float("inf")) -> np.ndarray:
        """Samples of the frames that arrived in ``[start, end)`` (loop time)."""
        chunks = [pcm for at, pcm in self.received if start <= at < end]
        return np.concatenate(chunks) if chunks else np.zeros(0)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._receive(track)))

    async def _receive(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            for out in resampler.resample(frame):
                pcm = bytes(out.planes[0])[: out.samples * 2]
                self.received.append((loop.time(), np.frombuffer(pcm, "<i2").astype(float)))


def sip_style(sdp: str) -> str:
    """aiortc's G.711 offer reshaped like the live service's (``voice-live.jsonl``)."""
    session: list[str] = []
    media: list[str] = []
    credentials: list[str] = []
    for line in sdp.splitlines():
        if line.startswith("m=audio"):
            port = line.split()[1]
            media.append(f"m=audio {port} RTP/SAVP 0 8 101")
        elif line.startswith(("a=ice-ufrag", "a=ice-pwd", "a=fingerprint")):
            credentials.append(line)
        elif line.startswith(
            (
                "a=group:",
                "a=msid-semantic",
                "a=mid:",
                "a=msid:",
                "a=ssrc",
                "a=extmap",
                "a=rtcp-fb",
                "a=end-of-candidates",
            )
        ):
            continue
        elif media:
            media.append(line)
        else:
            session.append(line)
    media += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    return "\r\n".join([*session, *credentials, *media]) + "\r\n"
