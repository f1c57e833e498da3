"""The emulator's own WebRTC peer: the service's side of a voice call, on aiortc.

``VoicePeer`` is the media hook a ``webCall`` gets unless ``Emulator(media=)``
says otherwise. It offers (the SIP-style offer by default, see ``_sdp``),
applies the answer, then plays the agent's utterances (``speech``) or, as
the echo agent, what it hears a moment later; and it records what it hears.

This module imports aiortc and PyAV (about half a second): the conversation
imports it when a ``webCall`` starts, never before, so chat-only use and the
pytest plugin stay fast.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 -- aiortc runs on asyncio only
import logging
import os
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Final

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from blackbox_emulator._loopback import gather_on_loopback_when_alone
from blackbox_emulator._sdp import answer_for_aiortc, candidate_hosts, sip_offer
from blackbox_emulator._wav import WavWriter
from blackbox_emulator.script import OfferStyle
from blackbox_emulator.speech import SAMPLE_RATE, EchoLine, Samples, Speaker, utterance

__all__ = ["CONNECT_TIMEOUT", "VoicePeer"]

_log = logging.getLogger("blackbox_emulator.voice")

#: Seconds from applying the answer to a connected call (ICE, then DTLS).
CONNECT_TIMEOUT: Final = 10.0
#: 20 ms of audio per frame, as every WebRTC and SIP stack sends by default.
_FRAME_SAMPLES: Final = SAMPLE_RATE // 50
#: How much longer than its length an utterance may take to play before the
#: agent stops waiting for it (a stalled or lost connection).
_SPEAK_MARGIN: Final = 2.0
#: Silence in the caller's audio (by its RTP timestamps) longer than this is
#: not filled into the recording: a new stream or a clock jump, not a pause.
_MAX_GAP: Final = 60.0
#: The rate of the recording per offer style: G.711's, or Opus's (what
#: aiortc's own offer, and a browser, prefer).
_RECORDING_RATE: Final[dict[OfferStyle, int]] = {"sip": 8000, "browser": 48000}
#: The codecs of the SIP-style offer, as aiortc names them.
_G711: Final = ("audio/pcmu", "audio/pcma")


class _AgentTrack(MediaStreamTrack):
    """The agent's outgoing audio: 20 ms frames at real-time pace from a sample source."""

    kind = "audio"

    def __init__(self, source: Callable[[int, float], Samples]) -> None:
        super().__init__()
        self._source = source
        self._start: float | None = None
        self._timestamp = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += _FRAME_SAMPLES
            wait = self._start + self._timestamp / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = self._source(_FRAME_SAMPLES, self._start + self._timestamp / SAMPLE_RATE)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._timestamp
        frame.time_base = Fraction(1, SAMPLE_RATE)
        return frame


class _Mono:
    """Audio frames of any layout and rate as mono 16-bit samples at one rate."""

    def __init__(self, rate: int) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono", rate=rate)

    def __call__(self, frame: AudioFrame) -> Samples:
        chunks = [part.to_ndarray().reshape(-1) for part in self._resampler.resample(frame)]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks).astype(np.int16)


class VoicePeer:
    """The service's WebRTC peer of one voice call (a ``MediaHook``).

    Args:
        offer_style: ``"sip"``: aiortc's offer rewritten in the live service's
            SIP shape (``RTP/SAVP``, G.711 and ``telephone-event``, no BUNDLE);
            ``"browser"``: aiortc's own offer as it makes it
            (``UDP/TLS/RTP/SAVPF``, Opus first, BUNDLE).
        echo_audio_after: when set, the agent is an echo: it plays back what it
            hears this many seconds later, and says its text chunks silently.
        recording: a WAV file to write what the caller says into (mono,
            16-bit; 8 kHz for the SIP style, 48 kHz for the browser style),
            complete at every moment; ``None``: no recording.
        connect_timeout: seconds ``answered`` waits for the media to connect.
    """

    def __init__(
        self,
        *,
        offer_style: OfferStyle = "sip",
        echo_audio_after: float | None = None,
        recording: str | os.PathLike[str] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._style: OfferStyle = offer_style
        self._speaker = Speaker()
        self._echo = None if echo_audio_after is None else EchoLine(echo_audio_after)
        self._echo_samples = _Mono(SAMPLE_RATE)
        self._recording_path = None if recording is None else Path(recording)
        self._recording_samples = _Mono(_RECORDING_RATE[offer_style])
        self._wav: WavWriter | None = None
        self._heard_until: float | None = None
        self._connect_timeout = connect_timeout
        self._pc: RTCPeerConnection | None = None
        self._track: _AgentTrack | None = None
        self._local_offer: str | None = None
        self._listener: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._utterances = 0
        self._closed = False

    # The MediaHook protocol.

    async def offer(self) -> str:
        """Make the offer: one ``sendrecv`` audio section, ICE fully gathered, no STUN.

        Raises:
            RuntimeError: called twice, or after ``aclose``.
            ConnectionError: no ICE candidate was gathered (no interface up).
        """
        if self._pc is not None or self._closed:
            raise RuntimeError("a VoicePeer makes one offer")
        # No iceServers: aiortc would otherwise ask a public STUN server, and
        # wait seconds for it on a machine that cannot reach it.
        gather_on_loopback_when_alone()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc = pc
        pc.on("connectionstatechange", self._on_state_change)
        self._track = _AgentTrack(self._pull)
        transceiver = pc.addTransceiver(self._track, direction="sendrecv")
        if self._style == "sip":
            # aiortc then offers (and accepts) only what a SIP offer can carry.
            codecs = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences(
                [codec for codec in codecs if codec.mimeType.lower() in _G711]
            )
        # setLocalDescription returns once ICE gathering is complete.
        await pc.setLocalDescription(await pc.createOffer())
        self._local_offer = pc.localDescription.sdp
        if not candidate_hosts(self._local_offer):
            raise ConnectionError(
                "aiortc gathered no ICE candidate: no network interface is up, not even "
                "loopback (bring one up: ip link set lo up)"
            )
        return sip_offer(self._local_offer) if self._style == "sip" else self._local_offer

    async def answered(self, sdp: str) -> None:
        """Apply the answer, start recording and listening, wait until connected.

        Raises:
            ValueError: the answer lacks what aiortc needs (the message says what).
            ConnectionError: ICE or DTLS failed, or did not connect in time.
            RuntimeError: no offer was made.
        """
        if self._pc is None or self._local_offer is None:
            raise RuntimeError("answered() before offer()")
        answer = answer_for_aiortc(sdp, self._local_offer)
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if self._recording_path is not None:
            self._wav = WavWriter(self._recording_path, _RECORDING_RATE[self._style])
        track = self._pc.getTransceivers()[0].receiver.track
        self._listener = asyncio.create_task(self._listen(track), name="blackbox-voice-listener")
        await self._connected()

    async def speak(self, text: str) -> None:
        """Play the utterance of ``text`` and return once it has been sent.

        The echo agent, or a peer whose media is not connected, says nothing
        and returns at once; so does a call whose media closes or fails
        meanwhile. A stalled connection does not hold the agent for longer
        than the utterance plus two seconds.
        """
        if self._echo is not None or self._pc is None or self._pc.connectionState != "connected":
            return
        samples = utterance(text, self._utterances)
        self._utterances += 1
        said = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not said.done():
                said.set_result(None)

        self._speaker.say(samples, done)
        try:
            async with asyncio.timeout(len(samples) / SAMPLE_RATE + _SPEAK_MARGIN):
                await said
        except TimeoutError:
            _log.info("an utterance was not played in time; the media is stalled")

    @property
    def recording(self) -> Path | None:
        """The WAV file of what the caller said, once the answer was applied."""
        return None if self._wav is None else self._wav.path

    async def aclose(self) -> None:
        """Close the peer connection, stop listening, finish the recording; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._speaker.clear()
        if self._track is not None:
            self._track.stop()
        if self._pc is not None:
            await self._pc.close()
        if self._listener is not None:
            # Closing ends the remote track, which ends the listener; be sure.
            self._listener.cancel()
            # wait(), unlike awaiting the task, never raises its CancelledError
            # into this task (which may be being cancelled itself).
            await asyncio.wait([self._listener])
        if self._wav is not None:
            self._wav.close()

    # Inside.

    async def _connected(self) -> None:
        assert self._pc is not None
        try:
            async with asyncio.timeout(self._connect_timeout):
                while True:
                    state = self._pc.connectionState
                    if state == "connected":
                        return
                    if state in ("failed", "closed"):
                        raise ConnectionError(f"the media connection {state} (ICE or DTLS)")
                    self._state_changed.clear()
                    await self._state_changed.wait()
        except TimeoutError:
            raise ConnectionError(
                f"the media did not connect within {self._connect_timeout:g} s (ICE and DTLS)"
            ) from None

    def _on_state_change(self) -> None:
        self._state_changed.set()
        if self._pc is not None and self._pc.connectionState in ("failed", "closed"):
            # Nothing queued will be played now: let the agent go on at once.
            self._speaker.clear()

    def _pull(self, count: int, at: float) -> Samples:
        if self._echo is not None:
            return self._echo.pull(count, at)
        return self._speaker.pull(count)

    async def _listen(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, AudioFrame):
                    self._heard(frame)
        except MediaStreamError:
            return

    def _heard(self, frame: AudioFrame) -> None:
        now = time.monotonic()
        if self._wav is not None and not self._wav.closed:
            self._record(frame)
        if self._echo is not None:
            self._echo.push(self._echo_samples(frame), now)

    def _record(self, frame: AudioFrame) -> None:
        assert self._wav is not None
        if frame.pts is not None and frame.time_base is not None:
            # The RTP timestamps show where the caller's audio had gaps (lost
            # packets, a paused sender): keep the recording on their timeline.
            start = float(frame.pts * frame.time_base)
            if self._heard_until is not None and 0 < start - self._heard_until <= _MAX_GAP:
                silence = round((start - self._heard_until) * self._wav.sample_rate)
                self._wav.write(bytes(2 * silence))
            self._heard_until = start + frame.samples / frame.sample_rate
        self._wav.write(self._recording_samples(frame).astype("<i2").tobytes())
