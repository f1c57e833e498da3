"""The agent's voice (tones), its sample queues, and the WAV writer: no WebRTC."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from blackbox_emulator._wav import WavWriter
from blackbox_emulator.speech import (
    AGENT_TONES_HZ,
    SAMPLE_RATE,
    EchoLine,
    Speaker,
    agent_tone,
    dominant_frequencies,
    utterance,
)


def test_each_utterance_has_its_tone() -> None:
    for index in range(len(AGENT_TONES_HZ) + 1):
        found = dominant_frequencies(utterance("Hello there, caller.", index), SAMPLE_RATE)
        assert found
        assert all(abs(frequency - agent_tone(index)) < 5 for frequency in found)
    assert agent_tone(len(AGENT_TONES_HZ)) == agent_tone(0) == 700.0
    # No tone is another's harmonic, nor a caller's usual test tone.
    for tone in AGENT_TONES_HZ:
        assert all(other % tone for other in AGENT_TONES_HZ if other != tone)
        assert tone not in (400.0, 440.0)


def test_an_utterance_beeps_once_per_word_then_falls_silent() -> None:
    samples = utterance("one two three", 0)
    block = SAMPLE_RATE // 100
    envelope = np.sqrt(
        np.mean(
            samples[: len(samples) // block * block].reshape(-1, block).astype(float) ** 2, axis=1
        )
    )
    loud = envelope > 1000

    # Three runs of loud 10 ms blocks: one beep per word.
    assert int(loud[0]) + int((loud[1:] & ~loud[:-1]).sum()) == 3
    # 80 ms + 20 ms per letter, 60 ms between words, 200 ms of silence at the end.
    expected = (0.14 + 0.14 + 0.18) + 2 * 0.06 + 0.2
    assert len(samples) == pytest.approx(expected * SAMPLE_RATE, abs=3)
    assert not samples[-int(0.19 * SAMPLE_RATE) :].any()
    assert samples.dtype == np.int16
    assert np.abs(samples).max() <= 0.5 * 32767 + 1


def test_text_without_words_is_still_a_beep() -> None:
    assert dominant_frequencies(utterance("...", 1), SAMPLE_RATE)[0] == pytest.approx(1100, abs=5)
    assert len(utterance(" ", 0)) == round(0.08 * SAMPLE_RATE) + round(0.2 * SAMPLE_RATE)


def test_silence_has_no_dominant_frequency() -> None:
    assert dominant_frequencies(np.zeros(SAMPLE_RATE, dtype=np.int16), SAMPLE_RATE) == []
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)
    assert dominant_frequencies(tone, SAMPLE_RATE) == pytest.approx([440] * 10, abs=2)


def test_the_speaker_plays_utterances_in_order_and_says_when_each_is_done() -> None:
    speaker = Speaker()
    done: list[str] = []
    speaker.say(np.full(250, 1, dtype=np.int16), lambda: done.append("first"))
    speaker.say(np.full(100, 2, dtype=np.int16), lambda: done.append("second"))

    assert speaker.pending == 350
    frame = speaker.pull(160)
    assert (frame == 1).all()
    assert done == []
    frame = speaker.pull(160)
    assert list(frame[:90]) == [1] * 90
    assert list(frame[90:]) == [2] * 70
    assert done == ["first"]
    frame = speaker.pull(160)
    assert list(frame[:30]) == [2] * 30
    assert not frame[30:].any()
    assert done == ["first", "second"]
    assert speaker.pending == 0


def test_clearing_the_speaker_releases_its_waiters() -> None:
    speaker = Speaker()
    done: list[int] = []
    speaker.say(np.ones(500, dtype=np.int16), lambda: done.append(1))
    speaker.say(np.ones(500, dtype=np.int16))
    speaker.pull(100)

    speaker.clear()

    assert done == [1]
    assert not speaker.pull(160).any()


def test_the_echo_line_delays_what_it_hears() -> None:
    line = EchoLine(0.5)
    heard = np.arange(1, 161, dtype=np.int16)
    line.push(heard, at=10.0)

    assert not line.pull(160, now=10.0).any()
    assert not line.pull(160, now=10.3).any()
    # Due at 10.5: the frame that starts 10 ms earlier has it from its 80th sample.
    early = line.pull(160, now=10.49)
    assert not early[:80].any()
    assert list(early[80:]) == list(heard[:80])
    assert list(line.pull(160, now=10.51)[:80]) == list(heard[80:])


def test_the_echo_line_keeps_late_audio_in_order() -> None:
    line = EchoLine(0.0)
    line.push([1] * 160, at=1.0)
    line.push([2] * 160, at=1.0)

    assert list(line.pull(320, now=1.5)) == [1] * 160 + [2] * 160
    with pytest.raises(ValueError, match="zero or more"):
        EchoLine(-1)


def test_the_wav_file_is_complete_after_every_write(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "call.wav"
    writer = WavWriter(path, 8000)

    with wave.open(str(path), "rb") as empty:
        assert (empty.getnchannels(), empty.getsampwidth(), empty.getframerate()) == (1, 2, 8000)
        assert empty.getnframes() == 0
    writer.write(np.arange(100, dtype="<i2").tobytes())
    writer.write(b"")
    with wave.open(str(path), "rb") as partial:
        assert partial.getnframes() == 100
        assert np.frombuffer(partial.readframes(100), dtype="<i2").tolist() == list(range(100))
    writer.write(bytes(40))
    writer.close()
    writer.close()
    with wave.open(str(path), "rb") as done:
        assert done.getnframes() == 120
    assert writer.frames == 120
    assert writer.closed
    with pytest.raises(ValueError, match="closed"):
        writer.write(bytes(2))


def test_the_wav_writer_takes_whole_samples_only(tmp_path: Path) -> None:
    writer = WavWriter(tmp_path / "odd.wav", 8000)
    with pytest.raises(ValueError, match="two bytes"):
        writer.write(b"\x00")
    writer.close()
