"""``EnergyVad``: voice is louder than the recent noise floor, and than a minimum."""

from __future__ import annotations

import numpy as np
import pytest
from blackbox_media_file import EnergyVad
from blackbox_protocol import AudioFrame

from tests.blackbox_media_file._audio import silent_frame, tone_frame


def noise_frame(level: float, seed: int) -> AudioFrame:
    """20 ms of white noise at roughly ``level`` RMS (fraction of full scale)."""
    noise = np.random.default_rng(seed).normal(0, level * 32767, 960)
    return AudioFrame(noise.astype("<i2").tobytes(), 48000)


def test_a_tone_after_silence_is_voice_and_silence_is_not() -> None:
    vad = EnergyVad()
    assert not vad.is_voice(silent_frame())
    assert vad.is_voice(tone_frame(440))
    assert vad.level == pytest.approx(0.3 / np.sqrt(2), rel=0.01)
    assert not vad.is_voice(silent_frame())


def test_a_call_that_opens_with_speech_hears_it() -> None:
    vad = EnergyVad()
    assert all(vad.is_voice(tone_frame(440, index=i)) for i in range(50))


def test_steady_noise_becomes_the_floor_and_voice_stands_out_of_it() -> None:
    vad = EnergyVad(floor_window=1.0)
    heard = [vad.is_voice(noise_frame(0.02, seed)) for seed in range(100)]  # 2 s of hiss
    assert not any(heard[60:])  # once the window has passed, hiss is the floor
    assert vad.noise_floor == pytest.approx(0.02, rel=0.2)
    assert vad.is_voice(tone_frame(440))


def test_quiet_sound_under_the_minimum_level_is_not_voice() -> None:
    vad = EnergyVad(min_level=0.01)
    vad.is_voice(silent_frame())
    assert not vad.is_voice(noise_frame(0.005, 1))
    assert vad.is_voice(noise_frame(0.05, 2))


def test_arguments_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ratio must be positive"):
        EnergyVad(ratio=0)
    with pytest.raises(ValueError, match="floor_window must be positive"):
        EnergyVad(floor_window=-1)
