"""docs/voice.md: its file-based examples run against the emulator."""

from __future__ import annotations

import functools
import importlib.util
import re
import wave
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
from blackbox_emulator import run_in_thread
from blackbox_emulator.speech import AGENT_TONES_HZ, dominant_frequencies


def write_tone(path: Path, frequency: float = 440.0, seconds: float = 2.0) -> Path:
    rate = 48000
    t = np.arange(round(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    """Samples (one row per channel), rate, channels."""
    with wave.open(str(path), "rb") as wav:
        channels, rate = wav.getnchannels(), wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.int16)
    return data.reshape(-1, channels).T.copy(), rate, channels


PAGE = Path(__file__).resolve().parents[2] / "docs" / "voice.md"


def python_blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)


def run_block(defining: str) -> dict[str, Any]:
    (code,) = [block for block in python_blocks() if defining in block]
    namespace: dict[str, Any] = {"__name__": "docs.voice"}
    exec(compile(code, "docs/voice.md", "exec"), namespace)
    return namespace


def test_every_block_compiles() -> None:
    for number, code in enumerate(python_blocks()):
        compile(code, f"docs/voice.md block {number}", "exec")


def test_the_file_example_calls_the_emulator(tmp_path: Path) -> None:
    call = run_block("async def call(")["call"]
    clip = write_tone(tmp_path / "question.wav")
    recording = tmp_path / "call.wav"

    with run_in_thread() as emu:
        said = anyio.run(call, emu.token, emu.server, str(clip), str(recording), backend="asyncio")

    assert said[:3] == ["Hello! ", "This is the BlackBox emulator. ", "How can I help?"]
    samples, rate, channels = read_wav(recording)
    assert channels == 2
    found = dominant_frequencies(samples[1], rate)
    assert any(abs(f - AGENT_TONES_HZ[0]) < 15 for f in found)
    assert any(abs(f - 440) < 15 for f in dominant_frequencies(samples[0], rate))


def test_the_testing_example_records_the_caller(tmp_path: Path) -> None:
    record_a_call = run_block("def record_a_call(")["record_a_call"]
    clip = write_tone(tmp_path / "clip.wav")

    path = record_a_call(tmp_path, clip)

    samples, rate, _ = read_wav(path)
    found = np.array(dominant_frequencies(samples[0], rate))
    assert (np.abs(found - 440) < 15).sum() >= 10


def load_voice_example() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "examples" / "voice_interrupt.py"
    spec = importlib.util.spec_from_file_location("voice_interrupt", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_voice_example_cuts_the_agent_off_and_mutes_the_caller(tmp_path: Path) -> None:
    barge_in = load_voice_example().barge_in
    clip = write_tone(tmp_path / "question.wav", seconds=6.0)
    recording = tmp_path / "call.wav"

    with run_in_thread() as emu:
        outcome = anyio.run(
            functools.partial(barge_in, patience=1.0),
            emu.token,
            emu.server,
            str(clip),
            str(recording),
            backend="asyncio",
        )

    # The emulator's greeting lasts longer than a second: it was cut off.
    assert outcome.startswith("cut off (")
    samples, rate, _ = read_wav(recording)
    sent, agent = samples[0], samples[1]
    # Muted for the first second: silence sent; then the clip.
    assert np.abs(sent[: rate // 2]).max() < 100
    assert any(abs(f - 440) < 15 for f in dominant_frequencies(sent[2 * rate :], rate))
    # The agent was heard before the cut.
    assert any(abs(f - AGENT_TONES_HZ[0]) < 15 for f in dominant_frequencies(agent, rate))
