"""``mute()``, ``unmute()`` and ``interrupt()`` in real calls: what the peer and the sink get."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from blackbox_media_aiortc import AiortcSession
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
from tests.blackbox_media_aiortc._peer import OfferingPeer
from tests.blackbox_media_aiortc.test_call import until_state

pytestmark = pytest.mark.anyio


class TimedSink(RecordingSink):
    """Keeps each frame with the loop time it arrived at."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    async def write(self, frame: AudioFrame) -> None:
        self.times.append(asyncio.get_running_loop().time())
        await super().write(frame)

    def between(self, start: float, end: float = float("inf")) -> np.ndarray:
        timed = zip(self.frames, self.times, strict=True)
        return samples(frame for frame, at in timed if start <= at < end)


class QueueingSink(RecordingSink):
    """A sink with a playback queue, as a speaker has: ``interrupt()`` reports what it held."""

    def __init__(self, held: float) -> None:
        super().__init__()
        self.held = held
        self.interrupts = 0

    def interrupt(self) -> float:
        self.interrupts += 1
        return self.held


class BrokenQueueSink(RecordingSink):
    def interrupt(self) -> float:
        raise RuntimeError("the device is gone")


async def test_mute_sends_silence_and_unmute_the_source_again() -> None:
    peer = OfferingPeer("sip")
    source = ToneSource(CALLER_TONE)
    session = AiortcSession(source)
    loop = asyncio.get_running_loop()
    session.mute()  # before the call: it starts muted
    assert session.muted
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await asyncio.sleep(0.8)
        session.unmute()
        session.unmute()  # idempotent
        unmuted = loop.time()
        await asyncio.sleep(0.8)
        session.mute()
        session.mute()
        muted = loop.time()
        await asyncio.sleep(0.8)
        reads_while_muted = source.reads
    finally:
        await session.close()
        await peer.close()

    assert session.muted
    start = peer.track.started
    assert start is not None
    before = peer.received_since(start + 0.3, unmuted)
    talking = peer.received_since(unmuted + 0.2, muted)
    after = peer.received_since(muted + 0.2)
    assert len(before) > 0.3 * 48000
    assert rms(before) < 50  # silence, yet sent: the stream ran
    assert peak_frequency(talking, 48000) == pytest.approx(CALLER_TONE, abs=10)
    assert rms(talking) > 3000
    assert len(after) > 0.4 * 48000
    assert rms(after) < 50
    assert reads_while_muted > 100  # about 2.4 s of 20 ms reads: muted, the source played on


async def test_interrupt_cuts_the_agent_until_it_is_quiet_and_its_next_utterance_plays() -> None:
    # The agent says two things: from 0.5 s to 2.5 s, and from 4.0 s to 5.0 s.
    peer = OfferingPeer("sip", windows=[(0.5, 2.5), (4.0, 5.0)])
    sink = TimedSink()
    session = AiortcSession(None, sink)
    loop = asyncio.get_running_loop()
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        start = peer.track.started
        assert start is not None
        await asyncio.sleep(max(0.0, start + 1.5 - loop.time()))
        assert not session.interrupting
        dropped = session.interrupt()
        interrupted = loop.time()
        assert session.interrupting
        await asyncio.sleep(max(0.0, start + 5.6 - loop.time()))
        assert not session.interrupting  # the agent went quiet: the cut is over
    finally:
        await session.close()
        await peer.close()

    assert dropped == 0.0  # this sink keeps no queue
    heard = sink.between(start + 0.8, interrupted)
    assert peak_frequency(heard, 48000) == pytest.approx(AGENT_TONE, abs=10)
    assert rms(heard) > 3000
    # From the interrupt to the end of that utterance (and the hang after it): silence.
    cut = sink.between(interrupted + 0.01, start + 2.8)
    assert len(cut) > 1.0 * 48000
    assert not cut.any()
    # The next utterance is not cut.
    again = sink.between(start + 4.3, start + 5.0)
    assert peak_frequency(again, 48000) == pytest.approx(AGENT_TONE, abs=10)
    assert rms(again) > 3000
    # received_audio() yields what arrived, cut or not.
    received = samples([frame async for frame in session.received_audio()])
    assert received.size == sum(len(frame.pcm) // 2 for frame in sink.frames)
    assert rms(received) > rms(samples(sink.frames)) * 1.2


async def test_interrupt_empties_the_sinks_queue_and_says_how_much() -> None:
    sink = QueueingSink(held=0.25)
    session = AiortcSession(None, sink)
    assert session.interrupt() == 0.25
    assert sink.interrupts == 1
    await session.close()
    assert AiortcSession().interrupt() == 0.0  # no sink at all


async def test_a_sink_failing_to_interrupt_is_logged_and_counts_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = AiortcSession(None, BrokenQueueSink())
    assert session.interrupt() == 0.0
    assert "failed to interrupt" in caplog.text
    await session.close()
