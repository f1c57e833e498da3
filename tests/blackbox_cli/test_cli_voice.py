"""``blackbox call``, ``devices`` and the voice ``demo``, run as a user runs them.

An emulator in one process (``blackbox emulator --port 0``), the call in
another; the recordings are checked by FFT: the agent's tones where the agent
is, our tone where we are. ``blackbox devices`` lists a device of our own
where PortAudio is installed (``tests/_system.py``), and says what to install
where it is not (tested everywhere, PortAudio hidden).
"""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from blackbox_emulator.speech import AGENT_TONES_HZ, dominant_frequencies
from blackbox_media_aiortc.devices import INSTALL_HINT

from tests._system import ALSA, PORTAUDIO, needs
from tests.blackbox_cli._process import (
    CLI,
    Process,
    base_env,
    emulator_process,
    is_note,
    run_cli,
)
from tests.blackbox_media_file._audio import read_wav, tone, write_wav

TOKEN = "voice-cli-token"
OUR_TONE_HZ = 440.0
GREETING = ["Hello! ", "This is the BlackBox emulator. ", "How can I help?"]
#: An ALSA device of our own (``$HOME/.asoundrc``), so that ``blackbox devices``
#: has a known name to list: the ``null`` plugin records silence and plays nowhere.
ASOUNDRC = "pcm.blackbox_null {\n    type null\n}\n"
#: ``blackbox`` with PortAudio hidden from sounddevice (as where it is not
#: installed; its way of looking is ``ctypes.util.find_library``), on any machine.
WITHOUT_PORTAUDIO = (
    "import ctypes.util, sys; ctypes.util.find_library = lambda name: None; "
    "from blackbox_cli._main import main; raise SystemExit(main(sys.argv[1:]))"
)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """Two seconds of 440 Hz, 48 kHz mono."""
    return write_wav(tmp_path / "clip.wav", tone(OUR_TONE_HZ, 2.0, 48000), 48000)


def tones(samples: npt.NDArray[np.int16], rate: int) -> list[float]:
    return dominant_frequencies(samples, rate)


def heard(found: list[float], frequency: float, windows: int = 2) -> bool:
    return sum(abs(f - frequency) < 15 for f in found) >= windows


def assert_agent_tones(samples: npt.NDArray[np.int16], rate: int) -> None:
    found = tones(samples, rate)
    for frequency in AGENT_TONES_HZ[:3]:
        assert heard(found, frequency), f"{frequency} Hz not in {found}"
    assert not heard(found, OUR_TONE_HZ)


def call_args(server: str, clip: Path, *more: str) -> list[str]:
    return ["call", "--server", server, "--token", TOKEN, "--play", str(clip), *more]


def test_a_call_with_json_output_records_the_agent(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "out.wav"
    with emulator_process("--token", TOKEN) as (server, _):
        result = run_cli(
            *call_args(server, clip, "--record", str(out), "--json", "--duration", "4"), timeout=40
        )

    assert result.status == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all("event" in line for line in lines)
    said = [
        line["text"]
        for line in lines
        if line["event"] == "TextReceived" and line["source"] == "assistant"
    ]
    assert said == GREETING
    assert lines[0]["event"] == "Connected"
    assert lines[-1]["event"] == "ConversationEnded"
    assert lines[-1]["result"]["status"] == "Completed"
    samples, rate, channels = read_wav(out)
    assert channels == 1
    assert_agent_tones(samples[0], rate)


def test_a_stereo_recording_has_us_left_and_the_agent_right(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "both.wav"
    with emulator_process("--token", TOKEN) as (server, _):
        result = run_cli(
            *call_args(server, clip, "--record-stereo", str(out), "--duration", "7"), timeout=40
        )

    assert result.status == 0, result.stderr
    assert "agent: Hello! This is the BlackBox emulator. How can I help?" in result.stdout
    assert "conversation ended: Completed" in result.stdout
    samples, rate, channels = read_wav(out)
    assert channels == 2
    left = tones(samples[0], rate)
    assert heard(left, OUR_TONE_HZ, windows=10)
    assert not any(heard(left, f) for f in AGENT_TONES_HZ[:3])
    assert_agent_tones(samples[1], rate)


def test_the_demo_calls_its_own_emulator(tmp_path: Path) -> None:
    out = tmp_path / "demo.wav"

    result = run_cli("demo", "--record", str(out), timeout=60)

    assert result.status == 0, result.stderr
    assert "agent: Hello! This is the BlackBox emulator. How can I help?" in result.stdout
    assert "conversation ended: Completed" in result.stdout
    assert f"recording (left: caller, right: agent): {out}" in result.stdout
    samples, rate, channels = read_wav(out)
    assert channels == 2
    assert_agent_tones(samples[1], rate)
    # The caller's clip (a voice) is on the left: energy, and none of the agent's tones.
    left = samples[0].astype(np.float64) / 32768
    assert np.sqrt(np.mean(left**2)) > 0.01
    found = tones(samples[0], rate)
    assert not all(heard(found, f) for f in AGENT_TONES_HZ[:3])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("no-ice", "the call ended before its audio connected"),
        ("no-offer", "the call ended before the service offered its audio (no sdpInvite came)"),
    ],
)
def test_a_call_whose_audio_never_connected_fails(
    tmp_path: Path, clip: Path, fault: str, reason: str
) -> None:
    out = tmp_path / "out.wav"
    with emulator_process("--token", TOKEN, "--fault", fault) as (server, _):
        # Hung up before any timeout: the service's result alone said Completed.
        result = run_cli(
            *call_args(server, clip, "--record", str(out), "--duration", "3"), timeout=40
        )

    assert result.status == 6, result.stderr
    errors = [line for line in result.stderr.splitlines() if not is_note(line)]
    assert errors == [f"blackbox: the call's audio failed: {reason}"]
    samples, _, channels = read_wav(out)
    assert channels == 1
    assert samples.shape[1] == 0


@needs(ALSA, PORTAUDIO)
def test_devices_lists_them(tmp_path: Path) -> None:
    (tmp_path / ".asoundrc").write_text(ASOUNDRC)

    result = run_cli("devices", env=base_env(HOME=str(tmp_path)), timeout=30)

    assert result.status == 0, result.stderr
    listed = re.compile(r"^ *\d+  blackbox_null  \[ALSA: input(?: \(default\))?, output", re.M)
    assert listed.search(result.stdout), result.stdout


def test_devices_without_portaudio_says_what_to_install() -> None:
    process = Process([sys.executable, "-c", WITHOUT_PORTAUDIO, "devices"], env=base_env())
    try:
        status = process.wait(30)
    finally:
        process.close()

    assert status == 2
    assert process.stderr == (
        "blackbox: microphone and speaker need PortAudio (PortAudio library not found): "
        f"{INSTALL_HINT}\n"
    )
    assert process.stdout == ""


def test_call_help_lists_its_options() -> None:
    result = run_cli("call", "--help")

    assert result.status == 0
    for option in (
        "--server",
        "--token",
        "--json",
        "--play",
        "--record",
        "--record-stereo",
        "--duration",
        "--input-device",
        "--output-device",
        "--half-duplex",
    ):
        assert option in result.stdout


def test_a_missing_clip_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"

    result = run_cli(*call_args("ws://127.0.0.1:9", missing), timeout=30)

    assert result.status == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("blackbox: ")
    assert str(missing) in line
    assert result.stdout == ""


def test_ctrl_c_during_a_call_keeps_a_valid_recording(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "out.wav"
    with emulator_process("--token", TOKEN) as (server, _):
        process = Process([*CLI, *call_args(server, clip, "--record", str(out))], env=base_env())
        try:
            process.wait_for_stdout(lambda text: "This is the BlackBox emulator." in text, 30)
            process.signal(signal.SIGINT)
            status = process.wait(15)
        finally:
            process.close()

    assert status == 130, process.stderr
    assert "blackbox: interrupted" in process.stderr
    samples, rate, channels = read_wav(out)
    assert channels == 1
    assert heard(tones(samples[0], rate), AGENT_TONES_HZ[0], windows=1)


def test_the_cli_page_lists_every_voice_option() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in ("call", "devices", "demo"):
        result = run_cli(command, "--help")
        for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.stdout)) - {"--help"}:
            assert f"`{option}" in text, f"docs/cli.md lacks blackbox {command} {option}"
    for fault in ("no-offer", "second-offer", "bad-offer", "no-ice"):
        assert f"`{fault}`" in text
