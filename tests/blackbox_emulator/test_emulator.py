"""The emulator's own lifecycle: starting, stopping, ``serve``, its options."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from blackbox_emulator import AgentScript, Emulator, MediaHook, serve
from blackbox_protocol import (
    Connected,
    ConversationEnded,
    TextReceived,
    ToolRequested,
)

from tests.blackbox_emulator._client import open_client

pytestmark = pytest.mark.anyio

WEATHER = Path(__file__).parents[2] / "examples" / "agents" / "weather.toml"


async def test_serve_runs_until_cancelled() -> None:
    ready: list[Emulator] = []
    emulator = Emulator()
    serving = asyncio.create_task(serve(emulator, ready=ready.append))
    while not ready:
        await asyncio.sleep(0.01)
    async with open_client(emulator.url_for(emulator.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving

    assert ready == [emulator]
    assert "not running" in repr(emulator)
    with pytest.raises(OSError, match="Connect call failed"):
        await asyncio.open_connection("127.0.0.1", emulator.port)


async def test_the_example_weather_script_runs() -> None:
    async with Emulator(script=WEATHER) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)
        await client.send_text("What is the weather in New York?")
        request = await client.wait_for(ToolRequested)
        await client.reply_to_tool(request.id, {"temperature": 18, "sky": "cloudy"})
        replies = [await client.wait_for(TextReceived) for _ in range(3)]
        await client.send_text("thanks!")
        await client.wait_for(ConversationEnded)

    assert dict(request.args) == {"city": "New York", "units": "metric"}
    assert "".join(t.text for t in replies) == "In New York it is 18 degrees and cloudy."


async def test_stopping_is_bounded_even_mid_reply() -> None:
    slow = AgentScript(greeting=("One ", "two."), chunk_delay=30)
    emu = Emulator(script=slow)
    async with emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(TextReceived)
        started = time.monotonic()
        await emu.stop(timeout=0.2)
        await emu.stop()  # idempotent

    assert time.monotonic() - started < 3
    assert emu.conversations[0].finished


async def test_a_failing_media_hook_ends_the_call_failed() -> None:
    class BrokenMedia:
        async def offer(self) -> str:
            raise RuntimeError("no audio device")

        async def answered(self, sdp: str) -> None:
            raise AssertionError("never called")

        async def speak(self, text: str) -> None:
            raise AssertionError("never called")

        @property
        def recording(self) -> Path | None:
            return None

        async def aclose(self) -> None:
            pass

    def media(additional_data: Mapping[str, Any] | None) -> MediaHook:
        return BrokenMedia()

    async with Emulator(media=media) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize("webCall")
        ended = await client.wait_for(ConversationEnded)

    assert ended.result.status == "Failed"
    assert ended.result.error_message == "the emulator's media failed: no audio device"


async def test_misuse_is_refused() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.server
    async with emu:
        with pytest.raises(RuntimeError, match="already running"):
            await emu.start()
    with pytest.raises(ValueError, match="must not be empty"):
        Emulator(token="")


def test_its_options_are_readable() -> None:
    emu = Emulator(host="::1", port=0, token="t", fault="garbage")

    assert emu.host == "::1"
    assert emu.token == "t"
    assert emu.fault == "garbage"
    assert emu.script == AgentScript.default()
    assert repr(emu) == "<Emulator not running fault=garbage conversations=0>"
