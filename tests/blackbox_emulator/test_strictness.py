"""The emulator as strict as the live service (1007 per rule, ``lenient``), and ``toolCallResult``.

Real loopback sockets: websockets' own client for the frames the SDK never
sends, the SDK's ``connect()`` where a real client fits.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import pytest
from blackbox_emulator import AgentScript, Direction, Emulator, ToolSpec, Turn
from blackbox_emulator.strictness import RULES
from blackbox_protocol import (
    TextReceived,
    ToolLogReceived,
    ToolRequested,
    connect,
)
from websockets.asyncio.client import ClientConnection as WebSocket
from websockets.asyncio.client import connect as connect_websocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed

from tests.blackbox_emulator._client import CLIENT_LOGGER

pytestmark = pytest.mark.anyio

#: The longest any exchange of these tests may take.
LIMIT: Final = 5.0
DOCS: Final = Path(__file__).parents[2] / "docs" / "emulator.md"

STAMP: Final = "2026-06-10T09:00:00.000Z"
INITIALIZE: Final = json.dumps(
    {
        "type": "initialize",
        "timestamp": STAMP,
        "channelId": None,
        "request": {"callType": "chat", "additionalData": {}},
    }
)

#: Answers each message with its text, in one chunk.
ECHO = AgentScript(echo_user=False, default_reply=("{text}",))
CARD = AgentScript(
    turns=(
        Turn(
            match=r"(?i)my name is (?P<name>\w+)",
            tool=ToolSpec("update_card", {"field": "name", "value": "{name}"}),
            reply=("Thanks, {name}.",),
        ),
    ),
)


def frame(**fields: Any) -> str:
    return json.dumps({"timestamp": STAMP, **fields})


@dataclass(frozen=True)
class Case:
    """A frame that breaks ``rule``; ``initialized``: sent after ``initialize`` (or as it)."""

    rule: str
    frame: str | bytes
    initialized: bool = True


CASES: Final = (
    Case("frame", "this is not JSON"),
    Case("frame", "[1, 2, 3]"),
    Case("frame", b"\x00\x01 binary"),
    Case("type", frame(channelId=None, content="hi")),
    Case("type", frame(type=7, channelId=None, content="hi")),
    Case("channelId", frame(type="incomingChatMessage", channelId=5, content="hi")),
    Case("initialize.request", frame(type="initialize", channelId=None), initialized=False),
    Case(
        "initialize.request.callType",
        frame(type="initialize", channelId=None, request={"callType": ["chat"]}),
        initialized=False,
    ),
    Case(
        "incomingChatMessage.content",
        frame(type="incomingChatMessage", channelId=None, content={"text": "hi"}),
    ),
    Case("incomingChatMessage.content", frame(type="incomingChatMessage", channelId=None)),
    Case("sdpAnswer.data.sdpAnswer", frame(type="sdpAnswer", channelId=None, data={})),
    Case(
        "sdpAnswer.data.sdpAnswer",
        frame(type="sdpAnswer", channelId=None, data={"sdpAnswer": {"sdp": "v=0"}}),
    ),
    Case(
        "websocketToolResponse.channelId",
        frame(type="websocketToolResponse", content={"id": "3f1c9a", "result": {}}),
    ),
    Case(
        "websocketToolResponse.content.id",
        frame(type="websocketToolResponse", channelId=None, content={"id": 3, "result": {}}),
    ),
    Case(
        "websocketToolResponse.content.id",
        frame(type="websocketToolResponse", channelId=None, content="done"),
    ),
)


def case_id(case: Case) -> str:
    return f"{case.rule}:{case.frame[:40]!r}"


@asynccontextmanager
async def raw_client(emu: Emulator) -> AsyncIterator[WebSocket]:
    async with connect_websocket(
        emu.url_for(emu.token), logger=CLIENT_LOGGER, close_timeout=1
    ) as websocket:
        yield websocket


async def receive_json(websocket: WebSocket) -> dict[str, Any]:
    with anyio.fail_after(LIMIT):
        message = await websocket.recv()
    assert isinstance(message, str)
    value = json.loads(message)
    assert isinstance(value, dict)
    return value


async def receive_until(websocket: WebSocket, kind: str) -> dict[str, Any]:
    """Skip frames until one of type ``kind`` (``event connection`` for an event's name)."""
    while True:
        message = await receive_json(websocket)
        name = message["type"]
        if name == "event":
            name = f"event {message['name']}"
        if name == kind:
            return message


async def closed(websocket: WebSocket) -> WebSocketClosed:
    """Read until the socket closes; how it closed."""
    with anyio.fail_after(LIMIT):
        try:
            while True:
                await websocket.recv()
        except WebSocketClosed as exc:
            return exc


async def chat_goes_on(websocket: WebSocket, case: Case) -> None:
    """After the bad frame, the conversation still answers and ends with its result."""
    if not case.initialized:
        await websocket.send(INITIALIZE)
    await websocket.send(frame(type="incomingChatMessage", channelId=None, content="still here"))
    while True:
        text = await receive_until(websocket, "text")
        if text["content"] == {"source": "assistant", "text": "still here"}:
            break
    await websocket.send(frame(type="terminate", channelId=None))
    result = await receive_until(websocket, "conversationResult")
    assert result["result"]["status"] == "Completed"


def test_every_rule_has_a_case_and_its_name_in_its_reason() -> None:
    assert {case.rule for case in CASES} == {rule.name for rule in RULES}
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.code == 1007
        assert rule.reason.startswith(rule.name + " "), rule
        # A close reason must fit a control frame: 123 bytes.
        assert len(rule.reason.encode()) <= 123


def test_the_docs_list_every_rule_as_the_table_says() -> None:
    rows = {}
    for line in DOCS.read_text().splitlines():
        found = re.match(r"\| `([^`]+)` \| (.+) \| (seen live|assumed) \|$", line)
        if found:
            rows[found[1]] = (found[2], found[3])
    assert rows == {
        rule.name: (f"`{rule.reason}`", "seen live" if rule.seen_live else "assumed")
        for rule in RULES
    }


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_a_frame_breaking_a_rule_closes_1007_with_the_rule(case: Case) -> None:
    (rule,) = [rule for rule in RULES if rule.name == case.rule]
    async with Emulator(script=AgentScript()) as emu:
        async with raw_client(emu) as websocket:
            if case.initialized:
                await websocket.send(INITIALIZE)
                await receive_until(websocket, "event opened")
            await websocket.send(case.frame)
            close = await closed(websocket)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert close.rcvd is not None
    assert (close.rcvd.code, close.rcvd.reason) == (1007, rule.reason)
    assert case.rule in close.rcvd.reason
    assert record.close_code == 1007
    assert record.close_reason == rule.reason
    # The bad frame is recorded, and nothing answered it.
    assert record.frames[-1].direction is Direction.IN
    assert record.frames[-1].data == case.frame


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_lenient_lets_the_frame_through_and_logs_the_rule_once(
    case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="blackbox_emulator")
    async with Emulator(script=ECHO, lenient=True) as emu:
        async with raw_client(emu) as websocket:
            if case.initialized:
                await websocket.send(INITIALIZE)
                await receive_until(websocket, "event opened")
            await websocket.send(case.frame)
            await websocket.send(case.frame)
            await chat_goes_on(websocket, case)
            close = await closed(websocket)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert close.rcvd is not None
    assert close.rcvd.code == 1000
    assert record.close_code == 1000
    relaxed = [r.getMessage() for r in caplog.records if r.name == "blackbox_emulator.strictness"]
    assert relaxed == [f"conversation {record.number}: lenient: {case.rule} relaxed"]


async def test_a_well_formed_chat_breaks_no_rule(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="blackbox_emulator")
    async with Emulator(script=CARD) as emu:
        async with connect(
            emu.token, server=emu.server, tools={"update_card": lambda **_: {}}
        ) as call:
            await call.send_text("My name is Igor")
            with anyio.fail_after(LIMIT):
                async for event in call:
                    if isinstance(event, TextReceived) and event.text == "Thanks, Igor.":
                        break
            result = await call.terminate()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert result is not None
    assert result.status == "Completed"
    assert record.close_code == 1000
    assert record.close_reason is None
    assert [r for r in caplog.records if r.name == "blackbox_emulator.strictness"] == []


# toolCallResult.


async def test_tool_call_result_follows_the_response_before_the_next_text() -> None:
    async with Emulator(script=CARD) as emu:
        async with raw_client(emu) as websocket:
            await websocket.send(INITIALIZE)
            await receive_until(websocket, "event opened")
            await websocket.send(
                frame(type="incomingChatMessage", channelId=None, content="My name is Igor")
            )
            request = await receive_until(websocket, "websocketToolRequest")
            tool_id = request["content"]["id"]
            await websocket.send(
                frame(
                    type="websocketToolResponse",
                    channelId=None,
                    content={"id": tool_id, "result": {"success": True}},
                )
            )
            log = await receive_json(websocket)
            reply = await receive_json(websocket)
            await websocket.send(frame(type="terminate", channelId=None))
            await closed(websocket)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert log.keys() == {"type", "timestamp", "channelId", "content"}
    assert log["type"] == "toolCallResult"
    assert log["channelId"] is None
    assert log["content"] == {"id": tool_id}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", log["timestamp"])
    assert reply["type"] == "text"
    assert reply["content"] == {"source": "assistant", "text": "Thanks, Igor."}
    # On the record, in the order of the wire.
    order = [
        (frame.direction, frame.json()["type"])
        for frame in record.frames
        if frame.json()["type"] in ("websocketToolResponse", "toolCallResult", "text")
    ][-3:]
    assert order == [
        (Direction.IN, "websocketToolResponse"),
        (Direction.OUT, "toolCallResult"),
        (Direction.OUT, "text"),
    ]


async def test_the_sdk_sees_the_tool_log_between_its_response_and_the_reply() -> None:
    answered: list[str] = []

    def update_card(field: str, value: str) -> dict[str, bool]:
        answered.append(value)
        return {"success": True}

    async with (
        Emulator(script=CARD) as emu,
        connect(emu.token, server=emu.server, tools={"update_card": update_card}) as call,
    ):
        await call.send_text("My name is Igor")
        seen: list[object] = []
        with anyio.fail_after(LIMIT):
            async for event in call:
                if isinstance(event, ToolRequested | ToolLogReceived | TextReceived):
                    seen.append(event)
                if isinstance(event, TextReceived) and event.text == "Thanks, Igor.":
                    break
        await call.terminate()

    (request,) = [event for event in seen if isinstance(event, ToolRequested)]
    (log,) = [event for event in seen if isinstance(event, ToolLogReceived)]
    assert answered == ["Igor"]
    assert log.message.type == "toolCallResult"
    assert log.message.extra["content"] == {"id": request.id}
    assert seen.index(request) < seen.index(log) < len(seen) - 1
    assert isinstance(seen[-1], TextReceived)
    assert seen[-1].text == "Thanks, Igor."


@pytest.mark.parametrize("how", ["option", "script"])
async def test_tool_call_results_are_off_by_the_option_or_the_script_key(how: str) -> None:
    if how == "option":
        emulator = Emulator(script=CARD, tool_call_results=False)
    else:
        text = json.dumps(
            {
                "tool_call_results": False,
                "turns": [
                    {
                        "match": "(?i)my name is (?P<name>\\w+)",
                        "tool": {"name": "update_card", "args": {"value": "{name}"}},
                        "reply": "Thanks, {name}.",
                    }
                ],
            }
        )
        script = AgentScript.parse(text, format="json")
        assert script.tool_call_results is False
        emulator = Emulator(script=script)
    async with emulator as emu:
        async with connect(
            emu.token, server=emu.server, tools={"update_card": lambda **_: {"success": True}}
        ) as call:
            await call.send_text("My name is Igor")
            events = []
            with anyio.fail_after(LIMIT):
                async for event in call:
                    events.append(event)
                    if isinstance(event, TextReceived) and event.text == "Thanks, Igor.":
                        break
            result = await call.terminate()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert result is not None
    assert [event for event in events if isinstance(event, ToolLogReceived)] == []
    assert "websocketToolResponse" in record.types(Direction.IN)
    assert "toolCallResult" not in record.types(Direction.OUT)


def test_the_script_key_must_be_a_boolean() -> None:
    with pytest.raises(ValueError, match="tool_call_results: expected true or false"):
        AgentScript.parse('tool_call_results = "no"', format="toml")
    assert AgentScript.parse("tool_call_results = false", format="toml").tool_call_results is False
    assert AgentScript.default().tool_call_results is True
