"""``FanOutSink`` and ``TeeSource``: one sink feeding many; a source copied as it plays."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from blackbox_media_file import FanOutSink, FileSource, TeeSource, WavRecorder
from blackbox_protocol import AudioFrame

from tests.blackbox_media_file._audio import read_wav, tone, tone_frame, write_wav

pytestmark = pytest.mark.anyio


class ListSink:
    def __init__(self) -> None:
        self.frames: list[AudioFrame] = []
        self.closes = 0

    async def write(self, frame: AudioFrame) -> None:
        self.frames.append(frame)

    async def close(self) -> None:
        self.closes += 1


class BrokenSink(ListSink):
    async def write(self, frame: AudioFrame) -> None:
        raise OSError("disk full")

    async def close(self) -> None:
        await super().close()
        raise OSError("still full")


async def test_every_sink_gets_every_frame(tmp_path: Path) -> None:
    first, second = ListSink(), ListSink()
    recorder = WavRecorder(tmp_path / "a.wav")
    fan = FanOutSink(first, recorder, second)

    for index in range(3):
        await fan.write(tone_frame(440, index=index))
    await fan.close()
    await fan.close()

    assert len(first.frames) == len(second.frames) == 3
    assert (first.closes, second.closes) == (1, 1)
    assert recorder.closed
    assert read_wav(tmp_path / "a.wav")[0].shape == (1, 3 * 960)


async def test_a_failing_sink_is_dropped_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, working = BrokenSink(), ListSink()
    fan = FanOutSink(broken, working)

    with caplog.at_level(logging.ERROR, "blackbox_media_file"):
        await fan.write(tone_frame(440))
        await fan.write(tone_frame(440, index=1))

    assert fan.sinks == [working]
    assert len(working.frames) == 2
    assert caplog.text.count("gets no more audio") == 1
    with pytest.raises(OSError, match="still full"):
        await fan.close()
    assert (broken.closes, working.closes) == (1, 1)


async def test_a_tee_copies_what_is_played_and_silence_when_nothing_is(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(440, 0.04, 48000), 48000)
    copies = ListSink()
    tee = TeeSource(FileSource(path), copies)

    played = [await tee.read() for _ in range(4)]

    assert [f is not None for f in played] == [True, True, False, False]
    assert copies.frames[:2] == played[:2]
    assert copies.frames[2:] == [AudioFrame(bytes(1920), 48000)] * 2


async def test_closing_a_tee_closes_its_source_however_it_closes(tmp_path: Path) -> None:
    class SyncClosing:
        closed = False

        async def read(self) -> AudioFrame | None:
            return None

        def close(self) -> None:
            self.closed = True

    class NoClose:
        async def read(self) -> AudioFrame | None:
            return None

    path = write_wav(tmp_path / "a.wav", tone(440, 0.04, 48000), 48000)
    file_source, sync_source, copies = FileSource(path), SyncClosing(), ListSink()
    for source in (file_source, sync_source, NoClose()):
        await TeeSource(source, copies).close()

    assert file_source.ended
    assert sync_source.closed
    assert copies.closes == 0  # the sinks are not the tee's


class QueueSink(ListSink):
    def __init__(self, held: float) -> None:
        super().__init__()
        self.held = held

    def interrupt(self) -> float:
        return self.held


class BrokenQueueSink(ListSink):
    def interrupt(self) -> float:
        raise RuntimeError("the device is gone")


async def test_an_interrupt_reaches_the_sinks_with_a_queue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = BrokenQueueSink()
    fan = FanOutSink(ListSink(), QueueSink(0.1), broken, QueueSink(0.3))
    assert fan.interrupt() == pytest.approx(0.3)  # side by side: the most any dropped
    assert broken not in fan.sinks  # it failed: it gets no more audio
    assert "failed" in caplog.text
    assert FanOutSink(ListSink()).interrupt() == 0.0


async def test_a_muted_tee_copies_silence_and_still_returns_the_frame() -> None:
    frame = tone_frame(440, rate=16000)
    copy = ListSink()

    class Steady:
        async def read(self) -> AudioFrame | None:
            return frame

    tee = TeeSource(Steady(), copy, sample_rate=16000)
    assert await tee.read() == frame
    tee.muted = True
    assert await tee.read() == frame  # the session sends the silence; the tee only records it
    tee.muted = False
    assert await tee.read() == frame
    assert [f.pcm == bytes(len(frame.pcm)) for f in copy.frames] == [False, True, False]
    assert {(f.sample_rate, len(f.pcm)) for f in copy.frames} == {(16000, len(frame.pcm))}
