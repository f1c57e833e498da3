"""``StereoRecorder``: both sides on one wall-clock timeline, valid at every moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import numpy as np
import pytest
from blackbox_media_file import Channel, FileError, StereoRecorder

from tests.blackbox_media_file._audio import (
    dominant_frequency,
    onset,
    read_wav,
    silent_frame,
    tone_frame,
)

pytestmark = pytest.mark.anyio


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_frame_received_half_a_second_after_one_sent_lands_half_a_second_later(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path, clock=clock)

    await recorder.sent.write(tone_frame(440))
    clock.now += 0.5
    await recorder.received.write(tone_frame(1000))
    await recorder.close()

    (left, right), rate, channels = read_wav(path)
    assert (rate, channels) == (48000, 2)
    assert onset(left) == 0
    assert onset(right) - onset(left) == 24000
    assert len(left) == 24000 + 960  # the file ends where the last audio ends
    assert not np.any(left[960:])
    assert not np.any(right[:24000])


async def test_real_time_alignment(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path)

    await recorder.sent.write(tone_frame(440))
    sent_at = time.monotonic()
    await anyio.sleep(0.5)
    received_at = time.monotonic()
    await recorder.received.write(tone_frame(1000))
    await recorder.close()

    (left, right), _, _ = read_wav(path)
    # However long the sleep really took, the channels are that far apart.
    apart = (onset(right) - onset(left)) / 48000
    assert apart == pytest.approx(received_at - sent_at, abs=0.002)
    assert apart >= 0.5


async def test_two_continuous_streams_stay_aligned_through_jitter_and_a_stall(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path, clock=clock)
    # Both sides every 20 ms for 2 s, each frame a little late or early; the
    # received side starts 0.3 s late; at 1 s the loop stalls for 150 ms and
    # then catches up with the frames it owes.
    start = clock.now
    for index in range(100):
        jitter = (-1) ** index * 0.004
        due = start + index * 0.02 + jitter
        if 50 <= index < 58:
            due = max(due, start + 1.15)
        clock.now = due
        await recorder.sent.write(tone_frame(440, index=index))
        if index >= 15:
            await recorder.received.write(tone_frame(1000, index=index - 15))
    await recorder.close()

    (left, right), _, _ = read_wav(path)
    assert onset(left) == 0
    assert onset(right) == pytest.approx(0.3 * 48000, abs=0.03 * 48000)
    # No silence was put in the middle of either stream: they are continuous.
    assert np.count_nonzero(np.abs(left[: 100 * 960].astype(int)) < 50) < 0.01 * 100 * 960
    assert dominant_frequency(left[: 100 * 960], 48000) == pytest.approx(440, abs=2)
    assert dominant_frequency(right[onset(right) :], 48000) == pytest.approx(1000, abs=2)


async def test_a_gap_on_one_side_becomes_silence(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path, clock=clock)

    await recorder.received.write(tone_frame(1000))
    clock.now += 2.0  # the agent pauses two seconds
    await recorder.received.write(tone_frame(1000))
    await recorder.close()

    (left, right), _, _ = read_wav(path)
    assert len(right) == 2 * 48000 + 960
    assert np.any(right[:960])
    assert not np.any(right[960 : 2 * 48000])
    assert np.any(right[2 * 48000 :])
    assert not np.any(left)


async def test_a_side_ahead_of_the_clock_drops_silence_to_catch_up(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path, clock=clock)

    # A stall of 0.5 s, then 25 frames at once; the silent frames after them
    # are dropped until the side is back on the clock.
    await recorder.sent.write(tone_frame(440))
    clock.now += 0.5
    for index in range(25):
        await recorder.sent.write(tone_frame(440, index=index))
    for _ in range(40):
        clock.now += 0.02
        await recorder.sent.write(silent_frame())
    clock.now += 0.02
    await recorder.sent.write(tone_frame(440))
    await recorder.close()

    (left, _), _, _ = read_wav(path)
    last_tone_at = len(left) - 960
    assert last_tone_at / 48000 == pytest.approx(0.5 + 41 * 0.02, abs=0.2 + 0.02)


async def test_the_file_keeps_up_while_one_side_is_quiet(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path, clock=clock)

    for index in range(100):  # 2 s sent, nothing received
        await recorder.sent.write(tone_frame(440, index=index))
        clock.now += 0.02
        (left, _right), _, _ = read_wav(path)  # valid at every step
        assert len(left) >= (index + 1) * 960 - 0.5 * 48000 - 960

    assert recorder.frames >= 1.5 * 48000 - 960
    await recorder.close()
    await recorder.received.close()
    assert recorder.closed
    assert read_wav(path)[0].shape == (2, 2 * 48000)


async def test_writes_after_close_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path)
    await recorder.sent.write(tone_frame(440))
    await recorder.received.close()  # closing either side finishes the recording

    await recorder.sent.write(tone_frame(440))
    recorder.add(Channel.RECEIVED, tone_frame(440))
    recorder.finish()

    assert read_wav(path)[0].shape == (2, 960)


async def test_frames_in_another_shape_are_converted(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "call.wav"
    recorder = StereoRecorder(path, sample_rate=16000, clock=clock)
    for index in range(50):
        await recorder.received.write(tone_frame(600, rate=48000, index=index))
        clock.now += 0.02
    await recorder.close()

    (_, right), rate, _ = read_wav(path)
    assert rate == 16000
    assert len(right) == 16000
    assert dominant_frequency(right, 16000) == pytest.approx(600, abs=2)


def test_a_place_that_cannot_be_written_fails(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="cannot record here"):
        StereoRecorder(tmp_path / "missing" / "call.wav")
    with pytest.raises(ValueError, match="positive"):
        StereoRecorder(tmp_path / "call.wav", sample_rate=0)


CHILD = textwrap.dedent(
    """
    import sys, anyio
    from blackbox_media_file import StereoRecorder
    from blackbox_protocol import AudioFrame

    async def main(path):
        recorder = StereoRecorder(path)
        frame = AudioFrame(b"\\x01\\x02" * 960, 48000)
        for index in range(60):  # 1.2 s, both sides
            await recorder.sent.write(frame)
            await recorder.received.write(frame)
            await anyio.sleep(0.02)
        print("recorded", flush=True)
        await anyio.sleep(30)

    anyio.run(main, sys.argv[1])
    """
)


def test_a_stereo_recording_killed_mid_call_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "killed.wav"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"recorded\n"
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            child.kill()

    (left, right), rate, channels = read_wav(path)
    assert (rate, channels) == (48000, 2)
    # Both channels were known together, so all of it is in.
    assert len(left) == 60 * 960
    assert set(left.tolist()) == set(right.tolist()) == {0x0201}
