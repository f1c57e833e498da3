"""The code on docs/voice-file.md runs: every snippet but the one needing a token.

Each snippet runs in a directory holding the files it names, and every session
it makes is closed after it. The source and sink the page shows how to write
then carry a real call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from blackbox_media_aiortc import AiortcSession
from blackbox_media_file import FanOutSink, StereoRecorder, TeeSource
from blackbox_protocol import AudioSession

from tests.blackbox_media_file._audio import (
    dominant_frequency,
    encode_tone,
    onset,
    read_wav,
    tone,
    tone_frame,
    write_wav,
)
from tests.blackbox_media_file._peer import OfferingPeer

pytestmark = pytest.mark.anyio

PAGE = Path(__file__).resolve().parents[2] / "docs" / "voice-file.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the page's sessions are aiortc's


@pytest.fixture
def in_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the clips the page names."""
    monkeypatch.chdir(tmp_path)
    write_wav(tmp_path / "hello.wav", tone(440, 0.3, 48000), 48000)
    for name in ("question.mp3", "question-1.mp3", "question-2.mp3"):
        encode_tone(tmp_path / name, codec="libmp3lame", seconds=0.3)
    return tmp_path


def run(snippet: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "voice_file_page"}
    exec(compile(snippet, str(PAGE), "exec"), namespace)
    return namespace


def test_the_page_has_its_snippets() -> None:
    assert len(SNIPPETS) == 6
    assert "YOUR-TOKEN" in SNIPPETS[0]


@pytest.mark.parametrize("index", range(1, 6))
async def test_each_snippet_runs(in_clips: Path, index: int) -> None:
    namespace = run(SNIPPETS[index])
    for value in namespace.values():
        if isinstance(value, AudioSession):
            await value.close()
    for wav in in_clips.glob("*.wav"):
        read_wav(wav)  # every recording made is a valid WAV


async def test_the_call_snippet_defines_main_and_a_file_session(in_clips: Path) -> None:
    # The first snippet needs a token and a service: check what it builds, not the call.
    snippet = SNIPPETS[0].replace('anyio.run(main, "YOUR-TOKEN", backend="asyncio")', "")
    namespace = run(snippet)
    assert callable(namespace["main"])


async def test_the_source_and_sink_the_page_writes_carry_a_call(in_clips: Path) -> None:
    namespace = run(SNIPPETS[5])
    speech, queue = namespace["SpeechTimes"](), namespace["QueueSource"]()
    for index in range(100):  # two seconds of what a TTS engine might produce
        queue.say(tone_frame(440, index=index))
    stereo = StereoRecorder(in_clips / "call.wav")
    session = AiortcSession(TeeSource(queue, stereo.sent), FanOutSink(speech, stereo.received))
    async with OfferingPeer(1000) as peer, session:
        await peer.accept(await session.answer(await peer.offer()))
        with anyio.fail_after(10):
            while speech.voiced_seconds < 1.0 or peer.heard_seconds < 1.5:
                await anyio.sleep(0.02)

    assert speech.closed
    heard = peer.heard()
    assert dominant_frequency(heard[onset(heard) :], 48000) == pytest.approx(440, abs=3)
    (left, right), _, _ = read_wav(in_clips / "call.wav")
    assert dominant_frequency(left[onset(left) : onset(left) + 48000], 48000) == pytest.approx(
        440, abs=3
    )
    assert dominant_frequency(right[onset(right) :], 48000) == pytest.approx(1000, abs=3)


def test_the_check_snippet_prints_what_the_page_says(
    in_clips: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(SNIPPETS[3])

    assert capsys.readouterr().out == (
        "./agent.wav: is the same file as the recording agent.wav: "
        "each recording needs a file of its own\n"
    )
    assert not (in_clips / "agent.wav").exists()
