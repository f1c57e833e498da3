"""Voice end to end: the driver with the file backend calls the emulator over real WebRTC.

Both offer styles and both offer keys; audio checked by FFT both ways (the
agent's tones in our recording, our tone in the emulator's); every voice fault
ends the call with its typed error, in bounded time, with our recording valid;
audio that never connects is ``MediaNotConnected``, whether ``Timeouts.media``
passes or we hang up first. aiortc is asyncio-only, so the calls run on
asyncio; under trio the media refuses at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import attrs
import blackbox_protocol as bb
import numpy as np
import pytest
from blackbox_emulator import (
    ConversationRecord,
    Direction,
    EmulatorThread,
    OfferKey,
    OfferStyle,
    run_in_thread,
)
from blackbox_emulator.speech import AGENT_TONES_HZ, dominant_frequencies
from blackbox_media_aiortc import AiortcSession, AsyncioRequired, OfferError
from blackbox_media_file import FileSession

from tests.blackbox_media_file._audio import read_wav, tone, write_wav
from tests.e2e._calls import finished

pytestmark = pytest.mark.anyio

TOKEN = "voice-token"
#: Our tone: none of the agent's, so an FFT tells them apart.
OUR_TONE_HZ = 440.0
DEFAULT_TIMEOUTS = bb.Timeouts()
GREETING = ["Hello! ", "This is the BlackBox emulator. ", "How can I help?"]


@pytest.fixture
def anyio_backend() -> str:
    """aiortc runs on asyncio only (trio is tested apart, below)."""
    return "asyncio"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """Two seconds of 440 Hz, 48 kHz mono."""
    return write_wav(tmp_path / "clip.wav", tone(OUR_TONE_HZ, 2.0, 48000), 48000)


@pytest.fixture
def emu_dir(tmp_path: Path) -> Path:
    path = tmp_path / "emulator"
    path.mkdir()
    return path


def has_tone(path: Path, frequency: float, *, windows: int = 2) -> bool:
    """Whether the WAV's first channel holds ``frequency`` in ``windows`` 100 ms windows or more."""
    samples, rate, _ = read_wav(path)
    found = dominant_frequencies(samples[0], rate)
    return sum(abs(f - frequency) < 15 for f in found) >= windows


def assert_valid_wav(path: Path) -> None:
    """A readable 16-bit WAV whose header counts exactly what it holds (``read_wav`` checks)."""
    samples, rate, channels = read_wav(path)
    assert rate > 0
    assert channels in (1, 2)
    assert samples.dtype == np.int16


@attrs.frozen
class Heard:
    """What a call heard: the greeting, the violations, the result, and the emulator's record."""

    texts: list[str]
    violations: list[str]
    result: bb.ConversationResultData | None
    record: ConversationRecord


async def greeted(emu: EmulatorThread, clip: Path, recording: Path) -> Heard:
    """Call, playing ``clip``; hang up once the agent's greeting has been heard."""
    texts: list[str] = []
    violations: list[str] = []
    session = FileSession(clip, record=recording)
    with anyio.fail_after(20):
        async with bb.connect(
            emu.token, server=emu.server, call_type="webCall", media=session
        ) as call:
            async for event in call:
                if isinstance(event, bb.ProtocolViolation):
                    violations.append(event.reason)
                if isinstance(event, bb.TextReceived) and event.source == "assistant":
                    texts.append(event.text)
                    if event.text == GREETING[-1]:
                        break
            # The last utterance is voiced as its text is sent: let it play (about 0.8 s).
            await anyio.sleep(1.5)
            result = await call.terminate()
        (record,) = await finished(emu)
    return Heard(texts, violations, result, record)


def assert_audio_both_ways(heard: Heard, recording: Path, *, rate: int) -> None:
    # What the agent said is in our recording: its three greeting tones.
    for frequency in AGENT_TONES_HZ[:3]:
        assert has_tone(recording, frequency), f"{frequency} Hz not heard"
    # What we played is in the emulator's.
    audio = heard.record.audio_path
    assert audio is not None
    assert read_wav(audio)[1:] == (rate, 1)
    assert has_tone(audio, OUR_TONE_HZ, windows=10)
    assert not has_tone(audio, AGENT_TONES_HZ[0])


@pytest.mark.parametrize("offer_key", ["invite", "sdpOffer"])
@pytest.mark.parametrize("offer_style", ["sip", "browser"])
async def test_a_voice_call_carries_audio_both_ways(
    tmp_path: Path, clip: Path, emu_dir: Path, offer_style: OfferStyle, offer_key: OfferKey
) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(
        token=TOKEN,
        record_dir=emu_dir,
        offer_style=offer_style,
        offer_key=offer_key,
    ) as emu:
        heard = await greeted(emu, clip, recording)

    assert heard.texts == GREETING
    assert heard.violations == []
    assert heard.result == bb.ConversationResultData(status="Completed")
    assert heard.record.audio_path is not None
    assert heard.record.audio_path.parent == emu_dir
    assert_audio_both_ways(heard, recording, rate=8000 if offer_style == "sip" else 48000)


@pytest.mark.parametrize("offer_key", ["invite", "sdpOffer"])
async def test_a_repeated_offer_keeps_the_call_and_its_audio(
    tmp_path: Path, clip: Path, emu_dir: Path, offer_key: OfferKey
) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(
        token=TOKEN, record_dir=emu_dir, offer_key=offer_key, fault="duplicate-offer"
    ) as emu:
        heard = await greeted(emu, clip, recording)

    offers = [m for m in heard.record.messages(Direction.OUT) if m["type"] == "sdpInvite"]
    assert len(offers) == 2
    assert offers[0]["data"] == offers[1]["data"]
    assert heard.record.types(Direction.IN).count("sdpAnswer") == 1
    assert heard.violations == ["the offer again (the same SDP): ignored, it is answered once"]
    assert heard.texts == GREETING
    assert heard.result == bb.ConversationResultData(status="Completed")
    assert_audio_both_ways(heard, recording, rate=8000)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_aiortc_media_refuses_at_once(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(AsyncioRequired, match="aiortc runs on asyncio only") as caught:
        FileSession(clip, record=tmp_path / "agent.wav")
    assert isinstance(caught.value, bb.MediaError)
    with pytest.raises(AsyncioRequired):
        AiortcSession()
    assert not (tmp_path / "agent.wav").exists()


async def fail_with(
    emu: EmulatorThread, session: FileSession, *, timeouts: bb.Timeouts = DEFAULT_TIMEOUTS
) -> tuple[BaseException, float]:
    """Call, iterate to the end; return the error raised and the seconds it took."""
    start = time.monotonic()
    with anyio.fail_after(15):
        try:
            async with bb.connect(
                emu.token,
                server=emu.server,
                call_type="webCall",
                media=session,
                timeouts=timeouts,
            ) as call:
                async for _ in call:
                    pass
        except bb.BlackBoxError as exc:
            return exc, time.monotonic() - start
    raise AssertionError("the call ended without an error")


async def test_no_offer_times_out(tmp_path: Path, emu_dir: Path) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(token=TOKEN, record_dir=emu_dir, fault="no-offer") as emu:
        error, seconds = await fail_with(
            emu, FileSession(record=recording), timeouts=bb.Timeouts(offer=1)
        )

    assert type(error) is bb.ProtocolTimeout
    assert str(error) == "no sdpInvite within 1 s"
    assert seconds < 5
    assert_valid_wav(recording)


async def test_a_bad_offer_is_an_offer_error(tmp_path: Path, emu_dir: Path) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(token=TOKEN, record_dir=emu_dir, fault="bad-offer") as emu:
        error, seconds = await fail_with(emu, FileSession(record=recording))

    assert type(error) is OfferError
    assert isinstance(error, bb.MediaError)
    assert seconds < 5
    assert_valid_wav(recording)


async def test_no_ice_fails_within_the_connect_timeout(tmp_path: Path, emu_dir: Path) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(token=TOKEN, record_dir=emu_dir, fault="no-ice") as emu:
        error, seconds = await fail_with(emu, FileSession(record=recording, connect_timeout=2))

    # The session's reason (MediaConnectTimeout), or the driver's plain MediaError
    # from before the core passed the session's ``failure`` on.
    assert isinstance(error, bb.MediaError)
    assert "within 2 s" in str(error) or str(error) == "the audio connection failed"
    assert seconds < 2 + 3  # the timeout, plus gathering and the close
    assert_valid_wav(recording)


async def test_a_second_offer_is_a_remote_protocol_error(tmp_path: Path, emu_dir: Path) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(token=TOKEN, record_dir=emu_dir, fault="second-offer") as emu:
        error, seconds = await fail_with(emu, FileSession(record=recording))

    assert type(error) is bb.RemoteProtocolError
    assert "sdpInvite" in str(error)
    assert seconds < 5
    assert_valid_wav(recording)


async def test_audio_not_connected_within_timeouts_media_is_media_not_connected(
    tmp_path: Path, clip: Path, emu_dir: Path
) -> None:
    recording = tmp_path / "agent.wav"
    # The session's own bound is longer: the driver's is the one that passes.
    session = FileSession([clip], record=recording, connect_timeout=30)
    with run_in_thread(token=TOKEN, record_dir=emu_dir, fault="no-ice") as emu:
        error, seconds = await fail_with(emu, session, timeouts=bb.Timeouts(media=1))

    assert type(error) is bb.MediaNotConnected
    assert str(error) == "the audio did not connect within 1 s of the answer"
    assert error.seconds == 1
    assert seconds < 1 + 4  # the timeout, plus gathering and the close
    assert_valid_wav(recording)
    # The turn script's clock starts with the audio: it never started.
    assert session.script is not None
    assert session.script.started_at is None
    assert session.script.events == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("no-ice", "the call ended before its audio connected"),
        ("no-offer", "the call ended before the service offered its audio (no sdpInvite came)"),
    ],
)
async def test_hanging_up_before_the_audio_connected_is_media_not_connected(
    tmp_path: Path, emu_dir: Path, fault: str, reason: str
) -> None:
    recording = tmp_path / "agent.wav"
    waiting_for = bb.OfferReceived if fault == "no-ice" else bb.Connected
    with run_in_thread(token=TOKEN, record_dir=emu_dir, fault=fault) as emu:
        with anyio.fail_after(15):
            async with bb.connect(
                emu.token,
                server=emu.server,
                call_type="webCall",
                media=FileSession(record=recording),
            ) as call:
                async for event in call:
                    if isinstance(event, waiting_for):
                        break
                with pytest.raises(bb.MediaNotConnected) as raised:
                    await call.terminate()

    assert str(raised.value) == reason
    assert raised.value.seconds is None
    # The result the service sent is kept.
    assert call.result == bb.ConversationResultData(status="Completed")
    assert_valid_wav(recording)
