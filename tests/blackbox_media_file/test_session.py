"""``FileSession`` against a real aiortc peer on loopback: files go out, recordings come in."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import anyio
import numpy as np
import numpy.typing as npt
import pytest
from blackbox_media_aiortc import AsyncioRequired
from blackbox_media_file import ClipStarted, FileError, FileSession, FileSource, TurnScript
from blackbox_protocol import MediaState

from tests.blackbox_media_aiortc._peer import OfferingPeer as AgentPeer
from tests.blackbox_media_file._audio import dominant_frequency, onset, read_wav, tone, write_wav
from tests.blackbox_media_file._peer import OfferingPeer

pytestmark = pytest.mark.anyio

OURS = 440.0
THEIRS = 1000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiortc is asyncio-only


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """What we play: 3 s of 440 Hz, as a 44.1 kHz WAV (so it is resampled on the way)."""
    return write_wav(tmp_path / "caller.wav", tone(OURS, 3.0, 44100), 44100)


async def connect(session: FileSession, peer: OfferingPeer) -> None:
    await peer.accept(await session.answer(await peer.offer()))


async def until(condition: object, seconds: float) -> None:
    """Wait (polling, bounded) until ``condition()`` is true."""
    assert callable(condition)
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.02)


def tone_part(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """The samples from the first loud one (the call starts with a little silence)."""
    start = onset(samples)
    assert start >= 0, "no sound at all"
    return samples[start:]


async def test_a_call_plays_the_file_and_records_the_agent(tmp_path: Path, clip: Path) -> None:
    mono, stereo = tmp_path / "agent.wav", tmp_path / "call.wav"
    async with OfferingPeer(THEIRS) as peer:
        async with FileSession(clip, record=mono, record_stereo=stereo) as session:
            assert isinstance(session.source, FileSource)
            await connect(session, peer)
            await until(lambda: peer.heard_seconds > 1.5, 10)
            during = session.state
            assert session.recorder is not None
            assert session.recorder.duration > 1.0
        assert during is MediaState.CONNECTED
        assert session.state is MediaState.CLOSED

    heard = tone_part(peer.heard())
    assert dominant_frequency(heard[:48000], 48000) == pytest.approx(OURS, abs=3)

    (agent,), rate, _ = read_wav(mono)
    assert rate == 48000
    assert dominant_frequency(tone_part(agent), 48000) == pytest.approx(THEIRS, abs=3)

    (left, right), _, channels = read_wav(stereo)
    assert channels == 2
    assert dominant_frequency(tone_part(left), 48000) == pytest.approx(OURS, abs=3)
    assert dominant_frequency(tone_part(right), 48000) == pytest.approx(THEIRS, abs=3)
    # Both sides start together (the peer plays from the start); allow the
    # network and jitter buffer their ~0.1 s.
    assert abs(onset(right) - onset(left)) / 48000 < 0.3


async def test_recordings_are_valid_after_the_call_is_cancelled(tmp_path: Path, clip: Path) -> None:
    mono, stereo = tmp_path / "agent.wav", tmp_path / "call.wav"
    session = FileSession(clip, record=mono, record_stereo=stereo)
    async with OfferingPeer(THEIRS) as peer:

        async def call() -> None:
            async with session:
                await connect(session, peer)
                await anyio.sleep_forever()

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(call)
                await until(lambda: peer.heard_seconds > 1.0, 10)
                tasks.cancel_scope.cancel()

    assert session.state is MediaState.CLOSED
    assert session.recorder is not None
    assert session.recorder.closed
    (agent,), _, _ = read_wav(mono)
    assert len(agent) > 0.5 * 48000
    assert dominant_frequency(tone_part(agent), 48000) == pytest.approx(THEIRS, abs=3)
    (_, right), _, _ = read_wav(stereo)
    assert dominant_frequency(tone_part(right), 48000) == pytest.approx(THEIRS, abs=3)
    await session.close()  # still idempotent


async def test_a_turn_script_plays_its_clips_in_a_call(tmp_path: Path) -> None:
    # The peer's tone never stops, so the script gives each clip max_wait.
    clips = [
        write_wav(tmp_path / f"{n}.wav", tone(f, 0.3, 48000), 48000)
        for n, f in (("one", 440), ("two", 660))
    ]
    async with (
        OfferingPeer(THEIRS) as peer,
        FileSession(clips, agent_wait=0.2, max_wait=0.4) as session,
    ):
        assert isinstance(session.script, TurnScript)
        await connect(session, peer)
        await until(lambda: session.script is not None and session.script.done, 10)

    started = [e for e in session.script.events if isinstance(e, ClipStarted)]
    assert [e.index for e in started] == [0, 1]
    assert peer.heard_seconds > 1.0


async def test_a_session_that_plays_nothing_still_records(tmp_path: Path) -> None:
    mono = tmp_path / "agent.wav"
    async with OfferingPeer(THEIRS) as peer, FileSession(record=mono) as session:
        assert session.source is None
        assert session.script is None
        await connect(session, peer)
        await until(lambda: session.recorder is not None and session.recorder.duration > 0.5, 10)
        states = session.state_changes()
        assert await anext(states) is MediaState.CONNECTED
        frames = session.received_audio()
        assert (await anext(frames)).sample_rate == 48000

    (agent,), _, _ = read_wav(mono)
    assert dominant_frequency(tone_part(agent), 48000) == pytest.approx(THEIRS, abs=3)
    heard = peer.heard()
    assert not np.any(np.abs(heard.astype(np.int32)) > 100)  # silence went out


def test_bad_files_fail_before_the_call(tmp_path: Path, clip: Path) -> None:
    with pytest.raises(FileError, match="no such file"):
        FileSession(tmp_path / "missing.mp3")
    with pytest.raises(FileError, match="cannot record here"):
        FileSession(clip, record=tmp_path / "agent.wav", record_stereo=tmp_path / "no/call.wav")
    # The recording made before the failure is not left behind.
    assert not (tmp_path / "agent.wav").exists()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_the_session_refuses_and_leaves_no_files(tmp_path: Path) -> None:
    with pytest.raises(AsyncioRequired):
        FileSession(record=tmp_path / "agent.wav")
    assert os.listdir(tmp_path) == []


async def test_when_the_peer_hangs_up_the_recording_is_valid_and_close_finishes_it(
    tmp_path: Path, clip: Path
) -> None:
    mono = tmp_path / "agent.wav"
    session = FileSession(clip, record=mono)
    async with OfferingPeer(THEIRS) as peer:
        await connect(session, peer)
        await until(lambda: session.recorder is not None and session.recorder.duration > 0.5, 10)
        await peer.pc.close()  # the far end goes away mid-call
        await until(lambda: session.state is MediaState.CLOSED, 10)
        (agent,), _, _ = read_wav(mono)  # valid before anyone closed the session
        assert len(agent) > 0.5 * 48000

    await session.close()
    await session.close()
    assert session.recorder is not None
    assert session.recorder.closed


async def test_a_session_closed_before_any_offer_leaves_empty_valid_files(tmp_path: Path) -> None:
    session = FileSession(record=tmp_path / "agent.wav", record_stereo=tmp_path / "call.wav")
    await session.close()
    await session.close()

    assert session.state is MediaState.CLOSED
    assert read_wav(tmp_path / "agent.wav")[0].shape == (1, 0)
    assert read_wav(tmp_path / "call.wav")[0].shape == (2, 0)


def loud_seconds(samples: npt.NDArray[np.int16], rate: int = 48000) -> float:
    """How long ``samples`` has sound, in 20 ms blocks whose peak is over 1000."""
    block = rate // 50
    count = len(samples) // block
    peaks = np.abs(samples[: count * block].astype(np.int32)).reshape(count, block).max(axis=1)
    return float(np.count_nonzero(peaks > 1000)) * 0.02


async def test_an_interrupt_shows_in_the_recordings_as_a_cut(tmp_path: Path) -> None:
    # The agent says two things, 2.0 s then 1.0 s; the first is interrupted after 1.0 s.
    mono, stereo = tmp_path / "agent.wav", tmp_path / "call.wav"
    peer = AgentPeer("browser", windows=[(0.5, 2.5), (4.0, 5.0)])
    try:
        async with FileSession(record=mono, record_stereo=stereo) as session:
            await peer.accept(await session.answer(await peer.offer()))
            await until(lambda: peer.track.started is not None, 10)
            start = peer.track.started
            assert start is not None
            loop_time = asyncio.get_running_loop().time
            await anyio.sleep(max(0.0, start + 1.5 - loop_time()))
            assert session.interrupt() == 0.0  # a recording queues nothing
            await anyio.sleep(max(0.0, start + 5.4 - loop_time()))
    finally:
        await peer.close()

    (agent,), _, _ = read_wav(mono)
    (_, right), _, _ = read_wav(stereo)
    for recorded in (agent, right):
        # 1.0 s of the first utterance and all 1.0 s of the second: not the 3.0 s said.
        assert loud_seconds(recorded) == pytest.approx(2.0, abs=0.3)
        cut = onset(recorded) + round(1.1 * 48000)  # 1.0 s from its start, and some margin
        assert not recorded[cut : cut + 48000].any()  # written as silence: the cut shows
        second = recorded[onset(recorded[cut:]) + cut :]
        assert dominant_frequency(second[:24000], 48000) == pytest.approx(1000, abs=3)


async def test_mute_sends_and_records_silence_while_the_file_plays_on(
    tmp_path: Path, clip: Path
) -> None:
    stereo = tmp_path / "call.wav"
    async with OfferingPeer(THEIRS) as peer, FileSession(clip, record_stereo=stereo) as session:
        session.mute()
        assert session.muted
        await connect(session, peer)
        await until(lambda: peer.heard_seconds > 1.2, 10)
        session.unmute()
        session.unmute()
        assert not session.muted
        await until(lambda: peer.heard_seconds > 2.4, 10)

    heard = peer.heard()
    assert not np.any(np.abs(heard[:48000].astype(np.int32)) > 100)  # muted: silence went out
    assert dominant_frequency(tone_part(heard), 48000) == pytest.approx(OURS, abs=3)
    (left, _), _, _ = read_wav(stereo)
    # The left channel has what was sent: silence, then the clip from where it had got to.
    assert onset(left) > 0.9 * 48000
    assert loud_seconds(left) < 1.6
    assert dominant_frequency(tone_part(left), 48000) == pytest.approx(OURS, abs=3)
