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
