"""``FileSource``: any format PyAV decodes, resampled to mono 20 ms frames, then ``None``."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from blackbox_media_file import FileError, FileSource
from blackbox_protocol import AudioFrame

from tests.blackbox_media_file._audio import dominant_frequency, encode_tone, tone, write_wav

pytestmark = pytest.mark.anyio


async def play_all(source: FileSource, *, limit: int = 10_000) -> list[AudioFrame]:
    frames: list[AudioFrame] = []
    for _ in range(limit):
        frame = await source.read()
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError("the source never ended")


def pcm_of(frames: list[AudioFrame]) -> npt.NDArray[np.int16]:
    return np.frombuffer(b"".join(f.pcm for f in frames), "<i2")


async def test_a_stereo_44k1_wav_becomes_48k_mono_20ms_frames_then_none(tmp_path: Path) -> None:
    stereo = np.repeat(tone(440, 1.0, 44100), 2)  # the same tone on both channels
    source = FileSource(write_wav(tmp_path / "a.wav", stereo, 44100, channels=2))

    frames = await play_all(source)

    assert {(f.sample_rate, f.channels, len(f.pcm)) for f in frames} == {(48000, 1, 1920)}
    assert len(frames) == 50  # exactly 1 s at 48 kHz
    assert dominant_frequency(pcm_of(frames), 48000) == pytest.approx(440, abs=2)
    assert source.ended
    assert source.position == pytest.approx(1.0)
    assert source.duration == pytest.approx(1.0)
    assert [await source.read() for _ in range(3)] == [None, None, None]


@pytest.mark.parametrize(
    ("name", "codec", "rate"),
    [
        ("tone.mp3", "libmp3lame", 44100),
        ("tone.ogg", "vorbis", 44100),
        ("tone.opus.ogg", "libopus", 48000),
        ("tone.flac", "flac", 44100),
    ],
)
async def test_compressed_formats_keep_the_tone(
    tmp_path: Path, name: str, codec: str, rate: int
) -> None:
    path = encode_tone(tmp_path / name, codec=codec, frequency=1000, seconds=1.0, rate=rate)
    source = FileSource(path, sample_rate=48000)

    frames = await play_all(source)

    assert {len(f.pcm) for f in frames} == {1920}
    # Encoders add priming and padding: about a second, give or take a few frames.
    assert 48 <= len(frames) <= 56
    assert dominant_frequency(pcm_of(frames), 48000) == pytest.approx(1000, abs=3)


async def test_the_last_frame_is_padded_with_silence(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "short.wav", tone(440, 0.05, 8000), 8000)  # 400 samples
    source = FileSource(path, sample_rate=8000)

    frames = await play_all(source)

    assert [len(f.pcm) for f in frames] == [320, 320, 320]  # 160 + 160 + 80 padded to 160
    tail = np.frombuffer(frames[-1].pcm, "<i2")
    assert np.any(tail[:80])
    assert not np.any(tail[80:])


async def test_another_rate_gives_frames_of_20ms_at_that_rate(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(300, 0.4, 48000), 48000)
    frames = await play_all(FileSource(path, sample_rate=16000))

    assert {(f.sample_rate, len(f.pcm)) for f in frames} == {(16000, 640)}
    assert len(frames) == 20
    assert dominant_frequency(pcm_of(frames), 16000) == pytest.approx(300, abs=3)


async def test_closing_ends_the_playback(tmp_path: Path) -> None:
    source = FileSource(write_wav(tmp_path / "a.wav", tone(440, 1.0, 48000), 48000))
    assert await source.read() is not None

    await source.close()
    await source.close()

    assert source.ended
    assert await source.read() is None


def test_a_missing_file_fails_when_the_source_is_made(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="no such file") as raised:
        FileSource(tmp_path / "nope.wav")
    assert raised.value.path == str(tmp_path / "nope.wav")


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="is a directory"):
        FileSource(tmp_path)


def test_a_file_that_is_not_media_fails(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("these are not the sounds you are looking for\n" * 100)

    with pytest.raises(FileError, match="not a media file PyAV can open"):
        FileSource(path)


def test_a_file_with_no_audio_fails(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "empty.wav", np.zeros(0, np.int16), 48000)

    with pytest.raises(FileError, match="has no audio to play"):
        FileSource(path)


def test_a_file_with_no_audio_stream_fails(tmp_path: Path) -> None:
    path = tmp_path / "picture.mkv"
    with av.open(str(path), "w") as output:
        stream = output.add_stream("ffv1", rate=1)
        stream.width = stream.height = 16
        frame = av.VideoFrame(16, 16, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        output.mux(stream.encode(frame))
        output.mux(stream.encode(None))

    with pytest.raises(FileError, match="has no audio stream"):
        FileSource(path)


def test_the_sample_rate_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        FileSource(tmp_path / "a.wav", sample_rate=0)


async def test_a_file_cut_short_plays_what_it_has(tmp_path: Path) -> None:
    whole = encode_tone(tmp_path / "whole.mp3", codec="libmp3lame", seconds=2.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    frames = await play_all(FileSource(cut))

    # About half the tone; a cut mid-frame is skipped quietly by the MP3 decoder.
    assert 40 <= len(frames) <= 60
    assert dominant_frequency(pcm_of(frames), 48000) == pytest.approx(440, abs=2)


async def test_a_file_corrupt_part_way_plays_up_to_there_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = encode_tone(tmp_path / "whole.mp3", codec="libmp3lame", seconds=2.0)
    damaged = bytearray(whole.read_bytes())
    third = len(damaged) // 3
    damaged[third : third + 2000] = random.Random(1).randbytes(2000)
    path = tmp_path / "damaged.mp3"
    path.write_bytes(damaged)

    with caplog.at_level(logging.WARNING, "blackbox_media_file"):
        frames = await play_all(FileSource(path))

    assert 10 < len(frames) < 90  # some of it, not all of it
    assert f"{path}: decoding stopped at" in caplog.text
