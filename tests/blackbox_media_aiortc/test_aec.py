"""Echo cancellation (the ``aec`` extra): WebRTC's AEC3 on a loopback of the agent's audio.

The agent's voice-like sound is played into the microphone path with a delay
and a gain, as a loudspeaker would; what is left of it after the canceller is
measured in dB. The workspace installs the extra (so CI runs these); without
it they skip, and the install hint is tested either way.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import sys

import numpy as np
import pytest
from blackbox_media_aiortc import AiortcSession, EchoCancellationUnavailable, EchoPolicy
from blackbox_media_aiortc.aec import AEC_INSTALL_HINT, EchoCanceller
from blackbox_protocol import AudioFrame, MediaState

from tests.blackbox_media_aiortc._audio import rms, sine, voice
from tests.blackbox_media_aiortc._peer import OfferingPeer
from tests.blackbox_media_aiortc.test_call import until_state

pytestmark = pytest.mark.anyio

needs_aec = pytest.mark.skipif(
    importlib.util.find_spec("livekit") is None,
    reason=f"echo cancellation needs the aec extra: {AEC_INSTALL_HINT}",
)

#: The canceller converges in a second or two of the agent speaking; measured after that.
CONVERGED = 2.0


def attenuation_db(echo: np.ndarray, left: np.ndarray) -> float:
    """How far below the echo what is left of it lies, in dB."""
    return 20 * math.log10(rms(echo) / max(rms(left), 1e-9))


def loopback(
    canceller: EchoCanceller, far: np.ndarray, delay: float, gain: float, caller: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Play ``far`` into the microphone (``delay`` s later, times ``gain``, plus the caller's
    ``caller``), through the canceller in 20 ms packets; return the echo and the output."""
    rate = canceller.sample_rate
    echo = np.zeros(len(far))
    shift = round(delay * rate)
    echo[shift:] = far[: len(far) - shift] * gain
    mic = np.clip(np.round(echo + caller), -32768, 32767).astype("<i2")
    packet = rate // 50
    out = bytearray()
    for start in range(0, len(far) - packet + 1, packet):
        canceller.far(far[start : start + packet].astype("<i2").tobytes())
        out += canceller.near(mic[start : start + packet].tobytes())
    return echo[: len(out) // 2], np.frombuffer(bytes(out), "<i2").astype(float)


@needs_aec
@pytest.mark.parametrize(("rate", "delay", "gain"), [(48000, 0.06, 0.5), (16000, 0.25, 0.8)])
def test_the_canceller_takes_out_most_of_the_echo(rate: int, delay: float, gain: float) -> None:
    far = np.frombuffer(voice(rate, 0, rate * 6), "<i2").astype(float)
    echo, out = loopback(EchoCanceller(rate), far, delay, gain, np.zeros(len(far)))
    steady = slice(round(CONVERGED * rate), None)
    assert rms(echo[steady]) > 500  # there was an echo to take out
    assert attenuation_db(echo[steady], out[steady]) >= 20  # measured: 40 dB, 68 dB


@needs_aec
def test_the_caller_is_still_heard_when_the_agent_is_quiet() -> None:
    rate = 48000
    far = np.frombuffer(voice(rate, 0, rate * 6), "<i2").astype(float)
    far[rate * 4 :] = 0  # the agent stops at 4 s; the caller speaks all along
    caller = np.frombuffer(sine(440, rate, 0, len(far)), "<i2").astype(float) * 0.4
    _, out = loopback(EchoCanceller(rate), far, 0.06, 0.5, caller)
    alone = slice(round(4.5 * rate), len(out))
    assert rms(out[alone]) > 0.5 * rms(caller[alone])  # not suppressed as echo (measured: 0.97)


@needs_aec
def test_the_canceller_refuses_what_webrtc_does_not_process() -> None:
    with pytest.raises(ValueError, match="runs at 8000, 16000, 32000, 48000 Hz, not 44100"):
        EchoCanceller(44100)
    with pytest.raises(ValueError, match="stream_delay_ms"):
        EchoCanceller(16000, stream_delay_ms=-1)
    with pytest.raises(ValueError, match="whole 10 ms blocks"):
        EchoCanceller(16000).near(bytes(100))
    with pytest.raises(ValueError, match="runs at"):
        AiortcSession(sample_rate=44100, echo_policy=EchoPolicy.ECHO_CANCELLATION)


def test_without_the_extra_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "livekit.rtc", None)  # what an absent package does
    with pytest.raises(EchoCancellationUnavailable, match="needs LiveKit's SDK") as caught:
        AiortcSession(echo_policy=EchoPolicy.ECHO_CANCELLATION)
    assert AEC_INSTALL_HINT in str(caught.value)
    assert AEC_INSTALL_HINT == 'pip install "blackbox-media-aiortc[aec]"'
    AiortcSession(echo_policy=EchoPolicy.FULL_DUPLEX)  # the other policies need nothing


def test_full_duplex_is_the_default_and_none_its_old_name() -> None:
    assert EchoPolicy["NONE"] is EchoPolicy.FULL_DUPLEX  # (mypy takes aliases for members)
    assert EchoPolicy("none") is EchoPolicy.FULL_DUPLEX
    assert EchoPolicy("full-duplex") is EchoPolicy.FULL_DUPLEX
    assert list(EchoPolicy) == [
        EchoPolicy.FULL_DUPLEX,
        EchoPolicy.HALF_DUPLEX,
        EchoPolicy.ECHO_CANCELLATION,
    ]
    assert AiortcSession().echo_policy is EchoPolicy.FULL_DUPLEX
    with pytest.raises(ValueError, match="is not a valid EchoPolicy"):
        EchoPolicy("echo")


class Room:
    """A loudspeaker and a microphone in one room: what the sink plays, the source hears.

    The sink's audio reaches the microphone ``delay`` seconds later, times
    ``gain``; the source gives it back 20 ms at a time and keeps it, with
    the loop time it was read at, as the echo to measure against.
    """

    def __init__(self, delay: float, gain: float, rate: int = 48000) -> None:
        self.rate = rate
        self.gain = gain
        self._air = bytearray(2 * round(delay * rate))
        self.heard: list[tuple[float, np.ndarray]] = []

    async def write(self, frame: AudioFrame) -> None:
        played = np.frombuffer(frame.pcm, "<i2").astype(float) * self.gain
        self._air += np.round(played).astype("<i2").tobytes()

    async def close(self) -> None:
        pass

    async def read(self) -> AudioFrame | None:
        size = 2 * (self.rate // 50)
        chunk = bytes(self._air[:size]).ljust(size, b"\0")
        del self._air[:size]
        self.heard.append(
            (asyncio.get_running_loop().time(), np.frombuffer(chunk, "<i2").astype(float))
        )
        return AudioFrame(chunk, self.rate, 1)

    def heard_since(self, start: float) -> np.ndarray:
        return np.concatenate([pcm for at, pcm in self.heard if at >= start])


async def call_in_a_room(policy: EchoPolicy) -> tuple[np.ndarray, np.ndarray]:
    """A 5 s call whose agent speaks all along, in a room: the echo, and what the peer got back."""
    peer = OfferingPeer("browser", voice=True)
    room = Room(delay=0.08, gain=0.5)
    session = AiortcSession(room, room, echo_policy=policy)
    loop = asyncio.get_running_loop()
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        settled = loop.time() + CONVERGED
        await asyncio.sleep(CONVERGED + 3.0)
    finally:
        await session.close()
        await peer.close()
    return room.heard_since(settled), peer.received_since(settled + 0.1)


@needs_aec
async def test_in_a_call_the_agent_hears_little_of_its_own_echo() -> None:
    (echo, left), (raw_echo, raw_left) = await asyncio.gather(
        call_in_a_room(EchoPolicy.ECHO_CANCELLATION), call_in_a_room(EchoPolicy.FULL_DUPLEX)
    )
    assert rms(echo) > 500
    assert len(left) > 2.0 * 48000
    # Without the canceller the echo goes back nearly whole (measured: 3 dB less, opus).
    assert abs(attenuation_db(raw_echo, raw_left)) < 6
    assert attenuation_db(echo, left) >= 10  # measured: 36 dB
