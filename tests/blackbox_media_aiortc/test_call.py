"""Real calls on loopback: an aiortc offerer answered by ``AiortcSession``, checked by content."""

from __future__ import annotations

import asyncio
import re

import pytest
from blackbox_media_aiortc import AiortcSession, EchoPolicy
from blackbox_protocol import AudioFrame, MediaState

from tests.blackbox_media_aiortc._audio import (
    AGENT_TONE,
    CALLER_TONE,
    RecordingSink,
    ToneSource,
    peak_frequency,
    rms,
    samples,
)
from tests.blackbox_media_aiortc._peer import OfferingPeer, Style

pytestmark = pytest.mark.anyio

#: How long each call carries audio; the first part is skipped (jitter buffer, codec start).
TALK = 1.2
SETTLE = 0.3


def m_line(sdp: str) -> tuple[str, list[str]]:
    """The audio ``m=`` line's profile and payload types."""
    match = re.search(r"^m=audio \d+ (\S+) (.*)$", sdp, re.MULTILINE)
    assert match is not None
    return match.group(1), match.group(2).split()


def states_of(session: AiortcSession) -> MediaState:
    """The state now (a call, so that mypy does not keep an earlier narrowing)."""
    return session.state


async def until_state(session: AiortcSession, wanted: MediaState, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        async for state in session.state_changes():
            if state is wanted:
                return
    raise AssertionError(f"the session ended in {session.state}, never {wanted}")


@pytest.mark.parametrize(
    ("style", "rate", "channels"),
    [("browser", 44100, 2), ("sip", 16000, 1)],
)
async def test_audio_flows_both_ways(style: Style, rate: int, channels: int) -> None:
    peer = OfferingPeer(style)
    sink = RecordingSink()
    source = ToneSource(CALLER_TONE, rate, channels)
    session = AiortcSession(source, sink)
    states: list[MediaState] = []
    try:
        offer = await peer.offer()
        answer = await asyncio.wait_for(session.answer(offer), 5)
        assert states_of(session) is MediaState.CONNECTING
        watcher = asyncio.ensure_future(_collect(session, states))
        await peer.accept(answer)
        await until_state(session, MediaState.CONNECTED)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(TALK)
    finally:
        await session.close()
        await peer.close()
    await asyncio.wait_for(watcher, 1)

    # The answer is one the offerer's stack takes: its profile, its codecs.
    offered_profile, offered_types = m_line(offer)
    answered_profile, answered_types = m_line(answer)
    assert answered_profile == offered_profile
    assert answered_types
    assert set(answered_types) <= set(offered_types)
    assert ("a=group:BUNDLE" in answer) == ("a=group:BUNDLE" in offer)

    # The agent's 1000 Hz reached the sink, mono at the session's rate.
    assert {(f.sample_rate, f.channels) for f in sink.frames} == {(48000, 1)}
    heard = samples(sink.frames)[int(SETTLE * 48000) :]
    assert peak_frequency(heard, 48000) == pytest.approx(AGENT_TONE, abs=10)
    assert sink.closes == 1

    # The caller's 440 Hz reached the peer.
    sent = peer.received_since(started + SETTLE)
    assert peak_frequency(sent, 48000) == pytest.approx(CALLER_TONE, abs=10)
    assert source.closed

    assert states == [MediaState.CONNECTING, MediaState.CONNECTED, MediaState.CLOSED]
    assert session.state is MediaState.CLOSED


async def test_received_audio_yields_the_frames_the_sink_gets() -> None:
    peer = OfferingPeer("sip")
    sink = RecordingSink()
    session = AiortcSession(None, sink, sample_rate=16000)
    got: list[AudioFrame] = []

    async def read() -> None:
        async for frame in session.received_audio():
            got.append(frame)

    reader = asyncio.ensure_future(read())
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await asyncio.sleep(0.5)
    finally:
        await session.close()
        await peer.close()
    await asyncio.wait_for(reader, 1)  # ends with the session

    assert got
    assert got == sink.frames
    assert {(f.sample_rate, f.channels) for f in got} == {(16000, 1)}
    assert peak_frequency(samples(got), 16000) == pytest.approx(AGENT_TONE, abs=10)
    assert session.dropped_frames == 0


async def test_an_unread_received_feed_drops_the_oldest_and_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("blackbox_media_aiortc.session.RECEIVED_FRAMES_KEPT", 5)
    peer = OfferingPeer("browser")
    session = AiortcSession()
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await asyncio.sleep(0.5)
    finally:
        await session.close()
        await peer.close()
    kept = [frame async for frame in session.received_audio()]
    assert len(kept) == 5
    assert session.dropped_frames > 0


async def _collect(session: AiortcSession, states: list[MediaState]) -> None:
    async for state in session.state_changes():
        states.append(state)


async def test_half_duplex_mutes_the_source_while_the_agent_is_heard() -> None:
    # The agent speaks from 1.0 s to 2.0 s of its track; the caller plays all along.
    peer = OfferingPeer("sip", window=(1.0, 2.0))
    session = AiortcSession(ToneSource(CALLER_TONE), echo_policy=EchoPolicy.HALF_DUPLEX)
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await asyncio.sleep(3.3)
    finally:
        await session.close()
        await peer.close()
    assert peer.track.started is not None
    start = peer.track.started

    before = peer.received_since(start + 0.4, start + 0.9)
    # Heard from ~1.1 s (network, jitter buffer), muted until ~2.1 s plus the
    # 0.5 s hang; what was sent then reaches the peer ~0.1 s later still.
    during = peer.received_since(start + 1.4, start + 2.4)
    after = peer.received_since(start + 3.0)
    assert peak_frequency(before, 48000) == pytest.approx(CALLER_TONE, abs=10)
    assert rms(before) > 3000
    assert len(during) > 0.9 * 48000
    assert rms(during) < 50  # G.711 carries digital silence as (near) zeros
    assert peak_frequency(after, 48000) == pytest.approx(CALLER_TONE, abs=10)
    assert rms(after) > 3000
    # About 1.0 s of the agent plus the hang, in 20 ms packets.
    assert 60 <= session.muted_frames <= 90


class BrokenSink(RecordingSink):
    async def write(self, frame: AudioFrame) -> None:
        await super().write(frame)
        raise OSError("disk full")


async def test_a_failing_sink_is_dropped_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer = OfferingPeer("browser")
    sink = BrokenSink()
    session = AiortcSession(sink=sink)
    got: list[AudioFrame] = []

    async def read() -> None:
        async for frame in session.received_audio():
            got.append(frame)

    reader = asyncio.ensure_future(read())
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await asyncio.sleep(0.3)
        assert states_of(session) is MediaState.CONNECTED
    finally:
        await session.close()
        await peer.close()
    await asyncio.wait_for(reader, 1)
    assert len(sink.frames) == 1
    assert len(got) > 5
    assert sink.closes == 1
    assert "the audio sink failed" in caplog.text
