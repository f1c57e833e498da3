"""``WavRecorder``: a mono WAV that is valid at every moment, even after SIGKILL."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from blackbox_media_file import FileError, WavRecorder, _wavfile
from blackbox_protocol import AudioFrame

from tests.blackbox_media_file._audio import dominant_frequency, read_wav, tone, tone_frame

pytestmark = pytest.mark.anyio


async def test_the_file_is_a_valid_wav_before_and_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "agent.wav"
    recorder = WavRecorder(path)
    assert read_wav(path)[0].shape == (1, 0)

    for index in range(5):
        await recorder.write(tone_frame(440, index=index))
        samples, rate, channels = read_wav(path)
        assert (rate, channels, samples.shape[1]) == (48000, 1, 960 * (index + 1))

    await recorder.close()
    assert recorder.closed
    assert recorder.frames == 4800
    assert recorder.duration == pytest.approx(0.1)


async def test_it_records_what_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "agent.wav"
    async with _closing(WavRecorder(path)) as recorder:
        for index in range(50):
            await recorder.write(tone_frame(700, index=index))

    samples, _, _ = read_wav(path)
    expected = tone(700, 1.0, 48000)
    assert np.array_equal(samples[0], expected)


async def test_frames_in_another_shape_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "agent.wav"
    stereo_16k = np.repeat(tone(500, 1.0, 16000), 2).astype("<i2").tobytes()
    async with _closing(WavRecorder(path, sample_rate=48000)) as recorder:
        for start in range(0, len(stereo_16k), 4 * 320):
            await recorder.write(AudioFrame(stereo_16k[start : start + 4 * 320], 16000, 2))

    samples, rate, channels = read_wav(path)
    assert (rate, channels) == (48000, 1)
    assert samples.shape[1] == 48000
    assert dominant_frequency(samples[0], 48000) == pytest.approx(500, abs=2)


async def test_close_is_idempotent_and_later_writes_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "agent.wav"
    recorder = WavRecorder(path)
    await recorder.write(tone_frame(440))
    await recorder.close()
    await recorder.close()
    await recorder.write(tone_frame(440, index=1))
    recorder.finish()

    assert read_wav(path)[0].shape == (1, 960)


def test_a_place_that_cannot_be_written_fails_when_the_recorder_is_made(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="cannot record here"):
        WavRecorder(tmp_path / "no" / "such" / "dir.wav")
    with pytest.raises(ValueError, match="positive"):
        WavRecorder(tmp_path / "a.wav", sample_rate=-1)


#: A child that records ``frames`` frames, says so, then keeps recording until killed.
CHILD = textwrap.dedent(
    """
    import sys, anyio
    from blackbox_media_file import WavRecorder
    from blackbox_protocol import AudioFrame

    async def main(path, frames):
        recorder = WavRecorder(path)
        frame = AudioFrame(b"\\x01\\x02" * 960, 48000)
        for _ in range(frames):
            await recorder.write(frame)
        print("recorded", flush=True)
        sys.stdin.readline()  # blocks until the parent has looked
        while True:
            await recorder.write(frame)

    anyio.run(main, sys.argv[1], int(sys.argv[2]))
    """
)


@contextmanager
def _child(code: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A child Python process, killed and reaped (pipes closed) on the way out."""
    with subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        # A bounded wait: whatever happens, the child is gone within 20 s.
        watchdog = threading.Timer(20, child.kill)
        watchdog.start()
        try:
            yield child
        finally:
            watchdog.cancel()
            child.kill()


def _kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL


def test_a_recording_killed_mid_call_is_valid_up_to_the_last_write(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    with _child(CHILD, str(path), "37") as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "recorded\n"
        _kill(child)  # while it waits: everything written so far must be there

    samples, rate, channels = read_wav(path)
    assert (rate, channels) == (48000, 1)
    assert samples.shape[1] == 37 * 960
    assert set(samples[0].tolist()) == {0x0201}


def test_a_recording_killed_while_writing_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    with _child(CHILD, str(path), "10") as child:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline() == "recorded\n"
        child.stdin.write("go\n")
        child.stdin.flush()
        # Let it write flat out for a moment, then kill it mid-stream.
        deadline = time.monotonic() + 10
        while path.stat().st_size < 44 + 200 * 1920 and time.monotonic() < deadline:
            time.sleep(0.001)
        _kill(child)

    with wave.open(str(path), "rb") as wav:
        frames = wav.getnframes()
        data = wav.readframes(frames)
    assert frames >= 200 * 960
    assert frames % 960 == 0  # the header counts whole writes only
    assert len(data) == 2 * frames
    assert path.stat().st_size - 44 - 2 * frames <= 1920  # at most one write uncounted


class _closing:
    """``async with`` for a sink: closes it on the way out."""

    def __init__(self, recorder: WavRecorder) -> None:
        self.recorder = recorder

    async def __aenter__(self) -> WavRecorder:
        return self.recorder

    async def __aexit__(self, *exc_info: object) -> None:
        await self.recorder.close()


async def test_a_recording_stops_at_the_wav_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_wavfile, "MAX_DATA_BYTES", 3 * 1920)  # WAV's 4 GiB, scaled down
    path = tmp_path / "long.wav"
    recorder = WavRecorder(path)

    with caplog.at_level(logging.WARNING, "blackbox_media_file"):
        for index in range(5):
            await recorder.write(tone_frame(440, index=index))

    assert recorder.closed
    assert "4 GiB limit reached" in caplog.text
    assert read_wav(path)[0].shape == (1, 3 * 960)
