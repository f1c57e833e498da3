"""Client-side tools end to end: the emulator's agent asks, ``connect(tools=...)`` answers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest
from blackbox_emulator import (
    AgentScript,
    ConversationRecord,
    Direction,
    ToolSpec,
    Turn,
)
from blackbox_emulator.thread import EmulatorFactory
from blackbox_protocol import (
    Call,
    Event,
    TextReceived,
    Timeouts,
    ToolHandler,
    ToolRequested,
    ToolTimedOut,
    connect,
)

from tests.e2e._calls import finished, until

pytestmark = pytest.mark.anyio

LIMIT = 15

#: The tools "call NAME" asks for, without arguments.
NAMES = ("broken", "nowhere", "slow", "fails", "answers", "unknown")
#: "weather in CITY" asks ``get_weather``; "call NAME" asks NAME; anything else is echoed.
SCRIPT = AgentScript(
    turns=(
        Turn(
            match=r"weather in (?P<city>\w+)",
            tool=ToolSpec("get_weather", {"city": "{city}", "units": "metric"}),
            reply=("In {city}: {tool_result.temperature} degrees, {tool_result.sky}.",),
        ),
        *(
            Turn(match=f"^call {name}$", tool=ToolSpec(name), reply=("result={tool_result}",))
            for name in NAMES
        ),
    ),
    default_reply=("echo: {text}",),
)


def reply_starting(prefix: str) -> Callable[[Event], bool]:
    def predicate(event: Event) -> bool:
        return (
            isinstance(event, TextReceived)
            and event.source == "assistant"
            and event.text.startswith(prefix)
        )

    return predicate


async def ask(call: Call, text: str, reply_prefix: str) -> tuple[list[Event], str]:
    """Say ``text``; the events up to the agent's reply, and the reply."""
    await call.send_text(text)
    events = await until(call, reply_starting(reply_prefix))
    last = events[-1]
    assert isinstance(last, TextReceived)
    return events, last.text


def tool_exchanges(record: ConversationRecord) -> list[tuple[str, str, Any]]:
    """(request id, tool name, the client's result) for each tool request, in order.

    Also checks that every request got exactly one response with its id, and
    that no response answered an id never asked.
    """
    requests = [
        m["content"] for m in record.messages(Direction.OUT) if m["type"] == "websocketToolRequest"
    ]
    responses = [m for m in record.messages(Direction.IN) if m["type"] == "websocketToolResponse"]
    counts = Counter(response["content"]["id"] for response in responses)
    assert counts == Counter(request["id"] for request in requests), "one response per request"
    assert all(response["channelId"] is None for response in responses)
    results = {response["content"]["id"]: response["content"]["result"] for response in responses}
    return [(request["id"], request["toolName"], results[request["id"]]) for request in requests]


def get_weather_sync(city: str, units: str) -> dict[str, Any]:
    return {"temperature": 21 if units == "metric" else 70, "sky": f"sunny over {city}"}


async def get_weather_async(city: str, units: str) -> dict[str, Any]:
    await anyio.sleep(0)
    return {"temperature": 18 if units == "metric" else 64, "sky": f"cloudy over {city}"}


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (get_weather_sync, {"temperature": 21, "sky": "sunny over Paris"}),
        (get_weather_async, {"temperature": 18, "sky": "cloudy over Paris"}),
    ],
    ids=["sync", "async"],
)
async def test_a_tool_handler_answers(
    blackbox_emulator_factory: EmulatorFactory,
    handler: ToolHandler,
    expected: Mapping[str, Any],
) -> None:
    emulator = blackbox_emulator_factory(script=SCRIPT)
    tools = {"get_weather": handler}
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server, tools=tools) as call:
            events, reply = await ask(call, "weather in Paris", "In Paris")
            await call.terminate()
        (record,) = await finished(emulator)

    (requested,) = [e for e in events if isinstance(e, ToolRequested)]
    assert (requested.name, dict(requested.args)) == (
        "get_weather",
        {"city": "Paris", "units": "metric"},
    )
    assert reply == f"In Paris: {expected['temperature']} degrees, {expected['sky']}."
    assert tool_exchanges(record) == [(requested.id, "get_weather", expected)]


async def test_a_failing_handler_sends_an_error_result_and_the_call_goes_on(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    def broken() -> None:
        raise ValueError("the weather service is down")

    emulator = blackbox_emulator_factory(script=SCRIPT)
    with anyio.fail_after(LIMIT):
        async with connect(
            emulator.token, server=emulator.server, tools={"broken": broken}
        ) as call:
            _, reply = await ask(call, "call broken", "result=")
            _, echo = await ask(call, "still there?", "echo:")
            result = await call.terminate()
        (record,) = await finished(emulator)

    error = {"error": "ValueError: the weather service is down"}
    assert reply == 'result={"error": "ValueError: the weather service is down"}'
    assert echo == "echo: still there?"
    assert result is not None
    assert result.status == "Completed"
    ((_, name, sent),) = tool_exchanges(record)
    assert (name, sent) == ("broken", error)


async def test_an_unregistered_tool_gets_an_error_result(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(script=SCRIPT)
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server) as call:
            _, reply = await ask(call, "call nowhere", "result=")
            _, echo = await ask(call, "and now?", "echo:")
            await call.terminate()
        (record,) = await finished(emulator)

    ((_, name, sent),) = tool_exchanges(record)
    assert name == "nowhere"
    assert sent == {"error": "LookupError: no tool named 'nowhere' is registered"}
    assert "no tool named 'nowhere'" in reply
    assert echo == "echo: and now?"


async def test_a_slow_async_handler_times_out_and_the_call_goes_on(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    cancelled = anyio.Event()

    async def slow() -> str:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return "too late"

    emulator = blackbox_emulator_factory(script=SCRIPT)
    with anyio.fail_after(LIMIT):
        async with connect(
            emulator.token,
            server=emulator.server,
            tools={"slow": slow},
            timeouts=Timeouts(tool=0.5),
        ) as call:
            events, reply = await ask(call, "call slow", "result=")
            await cancelled.wait()
            _, echo = await ask(call, "next", "echo:")
            await call.terminate()
        (record,) = await finished(emulator)

    (requested,) = [e for e in events if isinstance(e, ToolRequested)]
    (timed_out,) = [e for e in events if isinstance(e, ToolTimedOut)]
    assert timed_out == ToolTimedOut(requested.id, "slow")
    assert tool_exchanges(record) == [
        (requested.id, "slow", {"error": "the tool 'slow' did not answer in time"})
    ]
    assert "did not answer in time" in reply
    assert echo == "echo: next"


async def test_a_slow_sync_handler_times_out_and_its_late_result_is_dropped(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    release = threading.Event()
    returned = threading.Event()

    def slow() -> str:
        release.wait(10)
        returned.set()
        return "too late"

    emulator = blackbox_emulator_factory(script=SCRIPT)
    with anyio.fail_after(LIMIT):
        async with connect(
            emulator.token,
            server=emulator.server,
            tools={"slow": slow},
            timeouts=Timeouts(tool=0.5),
        ) as call:
            events, _ = await ask(call, "call slow", "result=")
            release.set()
            await anyio.to_thread.run_sync(returned.wait, 5.0)
            # A round trip after the handler returned: a late response would come before it.
            await ask(call, "next", "echo:")
            await call.terminate()
        (record,) = await finished(emulator)

    assert any(isinstance(e, ToolTimedOut) for e in events)
    ((_, _, sent),) = tool_exchanges(record)
    assert sent == {"error": "the tool 'slow' did not answer in time"}


async def test_every_request_gets_exactly_one_response(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    def fails() -> None:
        raise RuntimeError("no")

    async def slow() -> None:
        await anyio.sleep(30)

    tools: dict[str, ToolHandler] = {
        "get_weather": get_weather_sync,
        "fails": fails,
        "slow": slow,
        "answers": lambda: [1, 2, 3],
    }
    emulator = blackbox_emulator_factory(script=SCRIPT)
    with anyio.fail_after(LIMIT):
        async with connect(
            emulator.token, server=emulator.server, tools=tools, timeouts=Timeouts(tool=0.5)
        ) as call:
            for city in ("Oslo", "Rome", "Lima"):
                await ask(call, f"weather in {city}", f"In {city}")
            for name in ("fails", "slow", "answers", "unknown", "answers"):
                await ask(call, f"call {name}", "result=")
            result = await call.terminate()
            # The socket may already be closing: the result is what proves the end.
            assert result is not None
            assert result.status == "Completed"
        (record,) = await finished(emulator)

    exchanges = tool_exchanges(record)
    assert len(exchanges) == 8
    assert len({tool_id for tool_id, _, _ in exchanges}) == 8
    assert [sent for _, name, sent in exchanges if name == "answers"] == [[1, 2, 3], [1, 2, 3]]
