"""Interrupt, mute and voice through the sync API: the call's verbs reach the media, for real.

The backends' own tests check what interrupt and mute do to the audio; these
check that ``Call`` (async and sync) drives them in a real WebRTC call with
the emulator, and refuses them in a chat.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import blackbox_protocol as bb
import numpy as np
import pytest
from blackbox_emulator import EmulatorThread, run_in_thread
from blackbox_emulator.speech import AGENT_TONES_HZ, dominant_frequencies
from blackbox_media_aiortc import AiortcSession
from blackbox_media_file import FileSession
from blackbox_protocol import sync

from tests.blackbox_media_aiortc._audio import RecordingSink, ToneSource, samples
from tests.blackbox_media_file._audio import read_wav, tone, write_wav
from tests.e2e.test_voice import GREETING, TOKEN, has_tone

#: Each test's bound: a hang fails instead of blocking the suite.
LIMIT = 30
#: The emulator voices each chunk before it sends the next (0.8 s of tones):
#: a reply's chunks are that far apart.
PAUSE = 1.5


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """Three seconds of 440 Hz, 16 kHz mono."""
    return write_wav(tmp_path / "caller.wav", tone(440.0, 3.0, 16000), 16000)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiortc is asyncio-only
async def test_mute_and_interrupt_reach_the_media_of_a_voice_call(
    tmp_path: Path, clip: Path
) -> None:
    recording = tmp_path / "agent.wav"
    session = FileSession(clip, record=recording)
    with run_in_thread(token=TOKEN) as emu, anyio.fail_after(LIMIT):
        async with bb.connect(
            emu.token,
            server=emu.server,
            call_type="webCall",
            media=session,
            reply_pause=PAUSE,
        ) as call:
            greeting = await call.wait_for_reply()
            call.mute()
            assert call.muted
            assert session.muted
            dropped = call.interrupt()
            call.unmute()
            assert not call.muted
            assert not session.muted
            await call.terminate()

    assert greeting.text == "".join(GREETING)
    # A file sink has no playback queue: nothing is dropped, the rest is cut to silence.
    assert dropped == 0.0
    _, rate, channels = read_wav(recording)
    assert rate > 0
    assert channels == 1


@pytest.mark.anyio
async def test_a_chat_refuses_the_voice_verbs(blackbox_emulator: EmulatorThread) -> None:
    with anyio.fail_after(LIMIT):
        async with bb.connect(blackbox_emulator.token, server=blackbox_emulator.server) as call:
            assert not call.muted
            for verb in (call.mute, call.unmute, call.interrupt):
                with pytest.raises(bb.LocalProtocolError, match="is for voice calls, not a chat"):
                    verb()


def test_a_voice_call_through_the_sync_api(tmp_path: Path, clip: Path) -> None:
    recording = tmp_path / "agent.wav"
    with run_in_thread(token=TOKEN) as emu:
        session = FileSession(clip, record=recording)
        with sync.connect(
            emu.token,
            server=emu.server,
            call_type="webCall",
            media=session,
            reply_pause=PAUSE,
        ) as call:
            greeting = call.wait_for_reply(timeout=LIMIT)
            # The last utterance is voiced as its text is sent: let it play.
            time.sleep(1.5)
            call.mute()
            assert call.muted
            result = call.terminate()

    assert greeting.text == "".join(GREETING)
    assert result == bb.ConversationResultData(status="Completed")
    for frequency in AGENT_TONES_HZ[:3]:
        assert has_tone(recording, frequency), f"{frequency} Hz not heard"


def test_an_aiortc_session_through_the_sync_api() -> None:
    sink = RecordingSink()
    with run_in_thread(token=TOKEN) as emu:
        session = AiortcSession(ToneSource(440.0), sink)
        with sync.connect(
            emu.token, server=emu.server, call_type="webCall", media=session, reply_pause=PAUSE
        ) as call:
            greeting = call.wait_for_reply(timeout=LIMIT)
            time.sleep(1.5)  # the last utterance plays as its text is sent
            result = call.terminate()

    assert greeting.text == "".join(GREETING)
    assert result == bb.ConversationResultData(status="Completed")
    rate = sink.frames[0].sample_rate
    found = dominant_frequencies(samples(sink.frames).astype(np.int16), rate)
    for frequency in AGENT_TONES_HZ[:3]:
        assert any(abs(f - frequency) < 15 for f in found), f"{frequency} Hz not heard"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_failed_connect_leaves_the_media_for_the_next_try(
    tmp_path: Path, clip: Path
) -> None:
    session = FileSession(clip, record=tmp_path / "agent.wav")
    with run_in_thread(token=TOKEN) as emu, anyio.fail_after(LIMIT):
        with pytest.raises(bb.AuthenticationError):
            await bb.connect("wrong", server=emu.server, call_type="webCall", media=session)
        left = session.state
        async with bb.connect(
            emu.token, server=emu.server, call_type="webCall", media=session, reply_pause=PAUSE
        ) as call:
            greeting = await call.wait_for_reply()
    assert left is bb.MediaState.NEW
    assert greeting.text == "".join(GREETING)
    assert session.state is bb.MediaState.CLOSED
