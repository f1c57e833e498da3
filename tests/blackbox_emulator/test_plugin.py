"""The pytest plugin: its fixtures used directly, and in a separate pytest run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from blackbox_emulator import AgentScript, EmulatorFactory, EmulatorThread
from blackbox_protocol import ConversationEnded, ConversationFailed, TextReceived

from tests.blackbox_emulator._client import chat_sync

pytest_plugins = ["pytester"]

DOCS = Path(__file__).parents[2] / "docs" / "emulator.md"


def test_the_fixture_serves_the_default_script(blackbox_emulator: EmulatorThread) -> None:
    events = chat_sync(blackbox_emulator.url_for(blackbox_emulator.token), "fixture")

    assert next(e.text for e in events if isinstance(e, TextReceived)) == "Hello! "
    assert any(isinstance(e, ConversationEnded) for e in events)
    assert blackbox_emulator.server.startswith("ws://127.0.0.1:")
    assert len(blackbox_emulator.conversations) == 1


def test_the_factory_takes_the_emulator_options(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    refusing = blackbox_emulator_factory(fault="error", token="fixed")
    greeting = blackbox_emulator_factory(script=AgentScript(greeting=("Custom.",)))

    refused = chat_sync(refusing.url_for("fixed"), "x")
    greeted = chat_sync(greeting.url_for(greeting.token), "x")

    assert refusing.token == "fixed"
    assert any(isinstance(e, ConversationFailed) for e in refused)
    assert next(e.text for e in greeted if isinstance(e, TextReceived)) == "Custom."
    assert refusing.port != greeting.port


USER_TESTS = """
import asyncio
import json

import trio
import websockets.sync.client
import websockets.trio.client
from websockets.asyncio.client import connect


def initialize():
    return json.dumps(
        {"type": "initialize", "channelId": None, "request": {"callType": "chat"}}
    )


def test_sync(blackbox_emulator):
    url = f"{blackbox_emulator.server}/api/v1/ws/webCall?token={blackbox_emulator.token}"
    with websockets.sync.client.connect(url) as websocket:
        websocket.send(initialize())
        assert json.loads(websocket.recv(timeout=5))["name"] == "connection"


def test_asyncio(blackbox_emulator):
    async def main():
        url = blackbox_emulator.url_for(blackbox_emulator.token)
        async with connect(url) as websocket:
            await websocket.send(initialize())
            return json.loads(await websocket.recv())

    assert asyncio.run(main())["name"] == "connection"


def test_trio(blackbox_emulator_factory):
    emulator = blackbox_emulator_factory(fault="error")

    async def main():
        url = emulator.url_for(emulator.token)
        async with websockets.trio.client.connect(url) as websocket:
            await websocket.send(initialize())
            return json.loads(await websocket.recv())

    assert trio.run(main)["data"]["message"] == "Web integration is not enabled"


def test_records(blackbox_emulator):
    url = blackbox_emulator.url_for(blackbox_emulator.token)
    with websockets.sync.client.connect(url) as websocket:
        websocket.send(initialize())
        websocket.recv(timeout=5)
    blackbox_emulator.wait_until_idle()
    (record,) = blackbox_emulator.conversations
    assert record.finished
"""


def documented_files() -> dict[str, str]:
    """The Python blocks of docs/emulator.md that start with ``# NAME.py``, by NAME."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n# (\w+)\.py\n(.*?)```", text, flags=re.DOTALL)
    return dict(blocks)


def test_the_fixtures_work_in_a_users_test_session(pytester: pytest.Pytester) -> None:
    documented = documented_files()
    assert set(documented) == {"myapp", "test_myapp"}
    pytester.makeini("[pytest]\nfilterwarnings = error\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(test_user=USER_TESTS, **documented)

    # A separate process: the plugin is loaded through its entry point, as for a user.
    result = pytester.runpytest_subprocess("-q")

    result.assert_outcomes(passed=8)
