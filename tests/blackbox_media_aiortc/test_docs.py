"""docs/voice-aiortc.md: the source and sink it shows work in a real call."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from blackbox_media_aiortc import AiortcSession, AudioSink, AudioSource
from blackbox_protocol import MediaState

from tests.blackbox_media_aiortc._audio import CALLER_TONE, peak_frequency, rms
from tests.blackbox_media_aiortc._peer import OfferingPeer
from tests.blackbox_media_aiortc.test_call import until_state

pytestmark = pytest.mark.anyio

PAGE = Path(__file__).parents[2] / "docs" / "voice-aiortc.md"


def section_code(title: str) -> str:
    """The first python block under the page's ``## title``."""
    text = PAGE.read_text()
    section = text[text.index(f"## {title}\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def conforms(value: object, protocol: type) -> bool:
    """``isinstance`` against a runtime-checkable protocol, without narrowing ``value``."""
    return isinstance(value, protocol)


async def test_the_custom_source_and_sink_work_in_a_call() -> None:
    namespace: dict[str, Any] = {}
    exec(section_code("Writing your own"), namespace)
    beep, loudness = namespace["Beep"](), namespace["Loudness"]()
    assert conforms(beep, AudioSource)
    assert conforms(loudness, AudioSink)

    peer = OfferingPeer("sip")
    session = AiortcSession(beep, loudness)
    loop = asyncio.get_running_loop()
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        started = loop.time()
        await asyncio.sleep(2.5)
    finally:
        await session.close()
        await peer.close()

    assert peak_frequency(peer.received_since(started + 0.3, started + 1.8), 48000) == (
        pytest.approx(CALLER_TONE, abs=10)
    )
    assert rms(peer.received_since(started + 2.3)) < 50  # the beep is over: silence
    assert loudness.peak > 5000  # the agent's tone has amplitude 8000
    assert loudness.closed
