"""Microphone and speaker: real PortAudio streams on virtual ALSA devices, and the install hints.

The streams need PortAudio and ALSA (Debian's ``libportaudio2`` and
``libasound2``); the install hints are tested everywhere, PortAudio hidden.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from blackbox_media_aiortc import DeviceError
from blackbox_media_aiortc.devices import INSTALL_HINT, MicrophoneSource, SpeakerSink, list_devices

from tests._system import ALSA, PORTAUDIO, needs
from tests.blackbox_media_aiortc._alsa_probe import (
    MIC_TONE,
    SPEAKER_TONE,
    speaker_frames,
    write_config,
)
from tests.blackbox_media_aiortc._audio import peak_frequency, rms

ROOT = Path(__file__).parents[2]
#: The tests of real streams: PortAudio's ALSA host API on the probe's virtual devices.
virtual_devices = needs(ALSA, PORTAUDIO)


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What the probe recorded and played through PortAudio's ALSA host API."""
    directory = tmp_path_factory.mktemp("alsa")
    write_config(directory)
    env = {**os.environ, "HOME": str(directory)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.blackbox_media_aiortc._alsa_probe", str(directory)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def pcm(probed: dict[str, object], key: str) -> np.ndarray:
    value = probed[key]
    assert isinstance(value, str)
    return np.frombuffer(bytes.fromhex(value), "<i2").astype(float)


@virtual_devices
def test_the_virtual_devices_are_listed(probed: dict[str, object]) -> None:
    devices = probed["devices"]
    assert isinstance(devices, list)
    assert {"blackbox_mic", "blackbox_speaker"} <= set(devices)


@virtual_devices
def test_the_microphone_records_what_the_device_hears(probed: dict[str, object]) -> None:
    recorded = pcm(probed, "recorded")
    assert len(recorded) >= 48000 // 2
    assert probed["recorded_formats"] == [[48000, 1]]
    assert peak_frequency(recorded, 48000) == pytest.approx(MIC_TONE, abs=5)
    assert rms(recorded) > 3000


@virtual_devices
def test_the_speaker_plays_what_it_is_given(probed: dict[str, object]) -> None:
    played = pcm(probed, "played")
    given = np.frombuffer(b"".join(f.pcm for f in speaker_frames()), "<i2").astype(float)
    # Every sample given, in order; silence only where nothing was waiting (the
    # virtual device keeps no time, so it may run ahead of the writes).
    assert np.array_equal(played[played != 0], given[given != 0])
    sound = np.nonzero(played)[0]
    assert peak_frequency(played[sound[0] : sound[-1] + 1], 48000) == pytest.approx(
        SPEAKER_TONE, abs=5
    )
    assert probed["speaker_dropped"] == 0


@virtual_devices
def test_an_interrupted_speaker_drops_what_waits_to_be_played(probed: dict[str, object]) -> None:
    # 0.5 s was queued; PortAudio may have taken a block or two before the interrupt.
    dropped = probed["interrupt_dropped"]
    assert isinstance(dropped, float)
    assert 0.4 <= dropped <= 0.5
    sounding = probed["sounding_after_interrupt"]
    assert isinstance(sounding, int)
    assert sounding <= round((0.5 - dropped) * 48000) + 960  # what was taken, and no more


def test_without_sounddevice_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # what an absent package does
    for make in (MicrophoneSource, SpeakerSink, list_devices):
        with pytest.raises(DeviceError, match="need sounddevice") as caught:
            make()
        assert INSTALL_HINT in str(caught.value)
    assert "apt-get install libportaudio2" in INSTALL_HINT
    assert 'pip install "blackbox-media-aiortc[devices]"' in INSTALL_HINT


def test_without_portaudio_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # sounddevice, imported afresh, finds no PortAudio library and raises OSError.
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(DeviceError, match="need PortAudio") as caught:
        list_devices()
    assert INSTALL_HINT in str(caught.value)


@needs(PORTAUDIO)
def test_a_device_that_does_not_exist_is_refused_at_once() -> None:
    with pytest.raises(DeviceError, match="no speaker"):
        SpeakerSink("no such speaker anywhere")
    with pytest.raises(DeviceError, match="cannot open the microphone"):
        MicrophoneSource("no such microphone anywhere")
