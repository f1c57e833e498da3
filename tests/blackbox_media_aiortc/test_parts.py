"""The session's parts alone: the sending track, the feeds, the echo gate, the cut, PCM helpers."""

from __future__ import annotations

import asyncio
import math

import av
import pytest
from blackbox_media_aiortc._audio import MonoResampler, to_av, to_pcm
from blackbox_media_aiortc._cut import UtteranceCut
from blackbox_media_aiortc._feeds import FrameQueue, StateFeed
from blackbox_media_aiortc._loop import current_library, require_asyncio
from blackbox_media_aiortc._track import SourceTrack
from blackbox_media_aiortc.echo import HalfDuplexGate, level_dbfs
from blackbox_media_aiortc.errors import AsyncioRequired
from blackbox_protocol import AudioFrame, MediaState

from tests.blackbox_media_aiortc._audio import CALLER_TONE, ToneSource, peak_frequency, sine

pytestmark = pytest.mark.anyio


class ScriptedSource:
    """Gives the frames it was given, then ``None``; or raises when told to."""

    def __init__(self, *frames: AudioFrame | Exception | None) -> None:
        self.frames = list(frames)
        self.reads = 0

    async def read(self) -> AudioFrame | None:
        self.reads += 1
        if not self.frames:
            return None
        frame = self.frames.pop(0)
        if isinstance(frame, Exception):
            raise frame
        return frame


def pcm_of(frame: av.AudioFrame) -> bytes:
    assert frame.format.name == "s16"
    assert frame.layout.name == "mono"
    return to_pcm(frame)


async def test_the_track_sends_20_ms_frames_at_real_time_pace() -> None:
    track = SourceTrack(ToneSource(CALLER_TONE), 48000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    frames = [await track.recv() for _ in range(11)]
    took = loop.time() - started
    assert took == pytest.approx(0.2, abs=0.04)  # ten waits of 20 ms after the first frame
    assert [f.pts for f in frames] == [960 * i for i in range(11)]
    assert {(f.samples, f.sample_rate) for f in frames} == {(960, 48000)}
    assert track.sent_frames == 11


async def test_the_track_resamples_any_source_and_cuts_it_in_20_ms() -> None:
    # 44.1 kHz stereo, in 50 ms frames: cut, mixed down and resampled.
    source = ToneSource(CALLER_TONE, 44100, 2)
    track = SourceTrack(source, 16000)
    pcm = b"".join([pcm_of(await track.recv()) for _ in range(10)])
    assert len(pcm) == 10 * 320 * 2
    import numpy as np

    signal = np.frombuffer(pcm, "<i2").astype(float)[400:]  # past the resampler's delay
    assert peak_frequency(signal, 16000) == pytest.approx(CALLER_TONE, abs=10)


async def test_the_track_sends_silence_when_the_source_has_nothing() -> None:
    half = AudioFrame(sine(440, 8000, 0, 80), 8000)  # 10 ms
    source = ScriptedSource(half, None)
    track = SourceTrack(source, 8000)
    first = pcm_of(await track.recv())
    assert first[:160] == half.pcm
    assert first[160:] == bytes(160)  # padded at once: the source said "nothing now"
    assert pcm_of(await track.recv()) == bytes(320)
    assert source.reads == 3


async def test_a_failing_source_is_dropped_and_silence_follows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ScriptedSource(RuntimeError("disk on fire"), AudioFrame(b"\x01\x00" * 160, 8000))
    track = SourceTrack(source, 8000)
    assert pcm_of(await track.recv()) == bytes(320)
    assert pcm_of(await track.recv()) == bytes(320)
    assert source.reads == 1
    assert "the audio source failed" in caplog.text


async def test_a_stopped_track_ends() -> None:
    from aiortc.mediastreams import MediaStreamError

    track = SourceTrack(None, 48000)
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_the_half_duplex_gate_mutes_what_is_sent() -> None:
    gate = HalfDuplexGate()
    track = SourceTrack(ToneSource(CALLER_TONE, 8000), 8000, gate)
    assert pcm_of(await track.recv()) != bytes(320)
    gate.heard(sine(1000, 8000, 0, 160), asyncio.get_running_loop().time())
    assert pcm_of(await track.recv()) == bytes(320)
    assert track.muted_frames == 1


def test_the_gate_opens_after_the_hang() -> None:
    gate = HalfDuplexGate(threshold_dbfs=-40, hang=0.5)
    assert not gate.muted(10.0)
    gate.heard(bytes(320), 10.0)  # silence is not the agent speaking
    assert not gate.muted(10.0)
    gate.heard(sine(1000, 8000, 0, 160), 10.0)
    assert gate.muted(10.0)
    assert gate.muted(10.49)
    assert not gate.muted(10.5)


def test_levels_are_in_dbfs() -> None:
    assert level_dbfs(b"") == -math.inf
    assert level_dbfs(bytes(320)) == -math.inf
    full_scale = (b"\xff\x7f" + b"\x00\x80") * 80
    assert level_dbfs(full_scale) == pytest.approx(0, abs=0.01)
    # A sine of amplitude 8000: RMS 8000/sqrt(2), about -15.26 dBFS.
    assert level_dbfs(sine(1000, 8000, 0, 800)) == pytest.approx(-15.26, abs=0.01)


async def test_the_frame_queue_drops_the_oldest_and_ends_after_close() -> None:
    queue = FrameQueue(3)
    frames = [AudioFrame(bytes([i, 0]), 8000) for i in range(5)]
    for frame in frames:
        queue.put(frame)
    queue.close()
    queue.put(frames[0])  # ignored once closed
    assert [f async for f in queue] == frames[2:]
    assert queue.dropped == 2


async def test_a_frame_queue_reader_waits_for_frames() -> None:
    queue = FrameQueue(3)
    got: list[AudioFrame] = []

    async def read() -> None:
        async for frame in queue:
            got.append(frame)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.01)
    frame = AudioFrame(b"\x00\x00", 8000)
    queue.put(frame)
    await asyncio.sleep(0.01)
    assert got == [frame]
    queue.close()
    await asyncio.wait_for(reader, 1)


async def test_states_only_move_forward_and_every_reader_sees_them() -> None:
    feed = StateFeed()
    seen: list[list[MediaState]] = [[], []]

    async def watch(into: list[MediaState]) -> None:
        async for state in feed:
            into.append(state)

    watchers = [asyncio.ensure_future(watch(into)) for into in seen]
    await asyncio.sleep(0)
    assert feed.advance(MediaState.CONNECTING)
    assert not feed.advance(MediaState.NEW)
    assert not feed.advance(MediaState.CONNECTING)
    assert feed.advance(MediaState.CONNECTED)
    assert not feed.advance(MediaState.CONNECTING)
    assert feed.advance(MediaState.FAILED)
    assert not feed.advance(MediaState.CONNECTED)
    await asyncio.wait_for(asyncio.gather(*watchers), 1)
    expected = [MediaState.NEW, MediaState.CONNECTING, MediaState.CONNECTED, MediaState.FAILED]
    assert seen == [expected, expected]
    assert feed.advance(MediaState.CLOSED)  # close() ends in CLOSED even after FAILED
    assert not feed.advance(MediaState.CLOSED)
    assert [s async for s in feed] == [MediaState.CLOSED]


def test_pcm_round_trips_through_pyav() -> None:
    ours = AudioFrame(sine(440, 44100, 0, 441, channels=2), 44100, 2)
    theirs = to_av(ours, pts=7)
    assert (theirs.samples, theirs.sample_rate, theirs.layout.name, theirs.pts) == (
        441,
        44100,
        "stereo",
        7,
    )
    assert to_pcm(theirs) == ours.pcm
    same = AudioFrame(sine(440, 16000, 0, 320), 16000)
    assert MonoResampler(16000).resample_ours(same) == same.pcm


def test_a_resampler_follows_a_change_of_input_format() -> None:
    resampler = MonoResampler(16000)
    total = 0
    for rate, channels in [(8000, 1)] * 5 + [(48000, 2)] * 5:
        count = rate // 50
        total += len(
            resampler.resample_ours(AudioFrame(bytes(2 * channels * count), rate, channels))
        )
    assert total // 2 == pytest.approx(10 * 320, abs=200)  # minus filter delay


def test_the_event_loop_is_checked() -> None:
    assert current_library() is None
    require_asyncio(outside_ok=True)
    with pytest.raises(AsyncioRequired, match="no asyncio event loop"):
        require_asyncio()


async def test_on_asyncio_the_check_passes() -> None:
    assert current_library() == "asyncio"
    require_asyncio()


LOUD = sine(1000, 8000, 0, 160)  # 20 ms, amplitude 8000: about -15 dBFS
QUIET = bytes(320)


def test_without_an_interrupt_nothing_is_cut() -> None:
    cut = UtteranceCut()
    assert not cut.cutting
    assert all(cut.passes(LOUD, t * 0.02) for t in range(10))


def test_an_interrupt_cuts_until_the_agent_is_quiet_for_the_hang() -> None:
    cut = UtteranceCut(hang=0.8)
    cut.interrupt(now=1.0)
    # The agent speaks on for 1 s: all of it cut, whatever its pauses under the hang.
    speaking = [LOUD if t % 10 < 7 else QUIET for t in range(50)]
    assert not any(cut.passes(pcm, 1.0 + t * 0.02) for t, pcm in enumerate(speaking))
    last_loud = 1.0 + 46 * 0.02
    # Then quiet: still cut until 0.8 s after it was last loud, then through.
    assert not cut.passes(QUIET, last_loud + 0.78)
    assert cut.cutting
    assert cut.passes(QUIET, last_loud + 0.81)
    assert not cut.cutting
    assert cut.passes(LOUD, last_loud + 0.83)  # its next utterance plays


def test_after_a_gap_with_no_audio_the_next_utterance_plays() -> None:
    cut = UtteranceCut(hang=0.8)
    cut.interrupt(now=0.0)
    assert not cut.passes(LOUD, 0.5)
    assert cut.passes(LOUD, 1.4)  # nothing arrived for 0.9 s: that utterance is over


def test_interrupting_again_restarts_the_wait_for_quiet() -> None:
    cut = UtteranceCut(hang=0.8)
    cut.interrupt(now=0.0)
    assert not cut.passes(QUIET, 0.7)
    cut.interrupt(now=0.7)
    assert not cut.passes(QUIET, 1.4)
    assert cut.passes(QUIET, 1.5)


async def test_a_muted_track_reads_its_source_and_sends_silence() -> None:
    source = ToneSource(CALLER_TONE, 8000)
    track = SourceTrack(source, 8000)
    assert pcm_of(await track.recv()) != bytes(320)
    track.muted = True
    assert pcm_of(await track.recv()) == bytes(320)
    assert source.reads == 2  # read all the same: the file plays on, unheard
    track.muted = False
    assert pcm_of(await track.recv()) == source_pcm(source, 2)
    assert track.muted_frames == 0  # that count is the half-duplex gate's


def source_pcm(source: ToneSource, read: int) -> bytes:
    count = source.rate // 50
    return sine(source.frequency, source.rate, read * count, count)
