"""The ``AudioSession`` contract, checked the same way on every backend (DESIGN section 4).

Each backend answers a real aiortc offer (the live SIP style and the browser
style) on loopback: the answer comes with its candidates (no trickle ICE)
and keeps the offer's profile, the states move forward to ``CONNECTED``, the
agent's audio comes out of ``received_audio()`` by content, and closing is
final and safe to repeat. Every backend mutes, unmutes and interrupts, before,
during and after the call, without breaking it.
"""

from __future__ import annotations

import re
import wave
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from blackbox_media_aiortc import AiortcSession
from blackbox_media_file import FileSession
from blackbox_protocol import AudioFrame, AudioSession, MediaState

from tests.blackbox_media_aiortc._audio import (
    AGENT_TONE,
    CALLER_TONE,
    RecordingSink,
    ToneSource,
    peak_frequency,
    samples,
    sine,
)
from tests.blackbox_media_aiortc._peer import OfferingPeer, Style

pytestmark = pytest.mark.anyio

#: Seconds of the agent's audio to collect, and how much of its start to skip (codec warm-up).
LISTEN = 1.0
SKIP = 0.3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiortc runs on asyncio only


def aiortc_backend(tmp_path: Path) -> AudioSession:
    return AiortcSession(ToneSource(CALLER_TONE), RecordingSink())


def file_backend(tmp_path: Path) -> AudioSession:
    clip = tmp_path / "caller.wav"
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(sine(CALLER_TONE, 16000, 0, 16000 * 3))
    return FileSession(clip, record=tmp_path / "agent.wav")


BACKENDS: dict[str, Callable[[Path], AudioSession]] = {
    "aiortc": aiortc_backend,
    "file": file_backend,
}


def state_of(session: AudioSession) -> MediaState:
    """The state now (a call, so that mypy forgets an earlier narrowing)."""
    return session.state


def profile(sdp: str) -> str:
    match = re.search(r"^m=audio \d+ (\S+) ", sdp, re.MULTILINE)
    assert match is not None, sdp
    return match.group(1)


@pytest.mark.parametrize("style", ["sip", "browser"])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_a_backend_keeps_the_contract(backend: str, style: Style, tmp_path: Path) -> None:
    session = BACKENDS[backend](tmp_path)
    assert session.state is MediaState.NEW
    assert session.failure is None
    peer = OfferingPeer(style)
    states: list[MediaState] = []
    frames: list[AudioFrame] = []

    async def watch() -> None:
        async for state in session.state_changes():
            states.append(state)

    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group, session:
                group.start_soon(watch)
                offer = await peer.offer()
                answer = await session.answer(offer)
                assert "a=candidate:" in answer  # gathered before answering: no trickle ICE
                assert profile(answer) == profile(offer)
                await peer.accept(answer)
                async for frame in session.received_audio():
                    frames.append(frame)
                    if sum(f.duration for f in frames) >= SKIP + LISTEN:
                        break
            assert state_of(session) is MediaState.CLOSED
            await session.close()  # a second close is safe
    finally:
        await peer.close()

    assert state_of(session) is MediaState.CLOSED
    assert session.failure is None
    assert states[-1] is MediaState.CLOSED
    assert MediaState.CONNECTED in states
    assert MediaState.FAILED not in states
    rate = frames[0].sample_rate
    skipped = int(SKIP / frames[0].duration)
    assert peak_frequency(samples(frames[skipped:]), rate) == pytest.approx(AGENT_TONE, abs=15)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_a_backend_mutes_and_interrupts(backend: str, tmp_path: Path) -> None:
    session = BACKENDS[backend](tmp_path)
    assert session.muted is False
    session.mute()
    session.mute()  # idempotent
    assert session.muted is True
    session.unmute()
    session.unmute()
    assert session.muted is False
    assert session.interrupt() == 0.0  # before the call nothing is queued
    peer = OfferingPeer("browser")
    frames: list[AudioFrame] = []
    try:
        with anyio.fail_after(20):
            async with session:
                await peer.accept(await session.answer(await peer.offer()))
                async for frame in session.received_audio():
                    frames.append(frame)
                    if sum(f.duration for f in frames) >= SKIP:
                        break
                session.mute()
                dropped = session.interrupt()
                assert isinstance(dropped, float)
                assert dropped >= 0.0
                # received_audio() goes on with what arrives: the agent's tone.
                async for frame in session.received_audio():
                    frames.append(frame)
                    if sum(f.duration for f in frames) >= SKIP + LISTEN:
                        break
                assert state_of(session) is MediaState.CONNECTED
                session.unmute()
    finally:
        await peer.close()
    assert session.muted is False
    session.mute()  # after the call: safe, and still said
    assert session.muted is True
    assert session.interrupt() == 0.0
    skipped = int(SKIP / frames[0].duration)
    assert peak_frequency(samples(frames[skipped:]), frames[0].sample_rate) == pytest.approx(
        AGENT_TONE, abs=15
    )
