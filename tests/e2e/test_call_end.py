"""How a conversation's socket ends: as live (a voice call drops after its result), or cleanly.

Live, a voice call's socket ends with no close frame (1006) after
``conversationResult`` (PROTOCOL.md section 5): the emulator does the same by
default, after an ``event closed``; ``clean_voice_close`` gives a 1000 close,
and the ``drop-after-result`` fault ends a chat so too.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import blackbox_protocol as bb
import pytest
from blackbox_emulator import Direction, run_in_thread
from blackbox_media_file import FileSession

from tests.blackbox_media_file._audio import tone, write_wav
from tests.e2e._calls import finished

pytestmark = pytest.mark.anyio

LIMIT = 30
TOKEN = "end-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiortc


async def voice_call(emu: object, tmp_path: Path) -> tuple[list[bb.Event], bb.Call]:
    """A voice call, hung up after the greeting; every event of it (``on``: the close too)."""
    clip = write_wav(tmp_path / "caller.wav", tone(440.0, 1.0, 16000), 16000)
    events: list[bb.Event] = []
    with anyio.fail_after(LIMIT):
        async with bb.connect(
            TOKEN,
            server=emu.server,  # type: ignore[attr-defined]
            call_type="webCall",
            media=FileSession(clip, record=tmp_path / "agent.wav"),
            reply_pause=1.5,
        ) as call:
            call.on(bb.Event, events.append)
            await call.wait_for_reply()
            await call.terminate()
    return events, call


async def test_a_voice_call_ends_as_live_closed_then_the_result_then_no_close_frame(
    tmp_path: Path,
) -> None:
    with run_in_thread(token=TOKEN) as emu:
        events, call = await voice_call(emu, tmp_path)
        (record,) = await finished(emu)

    names = [type(event).__name__ for event in events]
    assert names[-2:] == ["ConversationEnded", "ConnectionClosed"]
    closed = [e for e in events if isinstance(e, bb.EventReceived) and e.name == "closed"]
    assert len(closed) == 1
    assert events.index(closed[0]) < names.index("ConversationEnded")
    assert events[-1] == bb.ConnectionClosed(None, "")  # no close frame: 1006
    assert call.result == bb.ConversationResultData(status="Completed")
    assert record.close_code is None
    sent = record.types(Direction.OUT)
    assert sent[-2:] == ["event closed", "conversationResult"]


async def test_clean_voice_close_ends_a_voice_call_with_1000(tmp_path: Path) -> None:
    with run_in_thread(token=TOKEN, clean_voice_close=True) as emu:
        events, call = await voice_call(emu, tmp_path)
        (record,) = await finished(emu)

    assert events[-1] == bb.ConnectionClosed(1000, "")
    assert not any(isinstance(e, bb.EventReceived) and e.name == "closed" for e in events)
    assert record.close_code == 1000
    assert call.result == bb.ConversationResultData(status="Completed")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_drop_after_result_fault_ends_a_chat_as_live_ends_a_voice_call(
    anyio_backend: str,
) -> None:
    with run_in_thread(token=TOKEN, fault="drop-after-result") as emu, anyio.fail_after(LIMIT):
        async with bb.connect(TOKEN, server=emu.server) as call:
            rest: list[bb.Event] = []
            call.on(bb.Event, rest.append)
            reply = await call.ask("hello")
            result = await call.terminate()
        (record,) = await finished(emu)

    assert reply.text == "You said: hello"
    assert result == bb.ConversationResultData(status="Completed")
    assert rest[-1] == bb.ConnectionClosed(None, "")
    assert record.close_code is None
