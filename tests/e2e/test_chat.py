"""Chat with the emulator end to end: ``connect()`` over real loopback sockets.

The emulator runs in a thread on its own asyncio loop, so each test runs the
SDK under asyncio and under trio against the same server.
"""

from __future__ import annotations

import anyio
import pytest
from blackbox_emulator import AgentScript, Direction, EmulatorThread, Turn
from blackbox_emulator.thread import EmulatorFactory
from blackbox_protocol import (
    Call,
    Connected,
    ConnectionState,
    ConversationEnded,
    Event,
    ReplyEnded,
    TextReceived,
    Timeouts,
    connect,
)

from tests.e2e._calls import assistant_said, finished, until

pytestmark = pytest.mark.anyio

#: Each test's bound: a hang fails instead of blocking the suite.
LIMIT = 15
GREETING = AgentScript.default().greeting


async def rest_of(call: Call) -> list[Event]:
    """The events until the iteration ends."""
    return [event async for event in call]


def texts(events: list[Event], source: str = "assistant") -> list[str]:
    return [e.text for e in events if isinstance(e, TextReceived) and e.source == source]


async def test_a_chat_from_greeting_to_result(blackbox_emulator: EmulatorThread) -> None:
    emulator = blackbox_emulator
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server) as call:
            states = [call.state]
            greeting = await until(call, assistant_said(GREETING[-1]))
            await call.send_text("hello there")
            reply = await until(call, assistant_said("hello there"))
            result = await call.terminate()
            states.append(call.state)
            rest = await rest_of(call)
        states.append(call.state)
        (record,) = await finished(emulator)

    # Right after terminate() the server may already have closed the socket.
    assert states[0] is ConnectionState.ACTIVE
    assert states[1] in {ConnectionState.ENDED, ConnectionState.CLOSED}
    assert states[2] is ConnectionState.CLOSED
    first = greeting[0]
    assert isinstance(first, Connected)
    assert first.conversation_id == record.job_id == call.conversation_id
    assert tuple(texts(greeting)) == GREETING
    assert texts(reply, "user") == ["hello there"]
    assert texts(reply) == ["You said: ", "hello there"]
    assert result is not None
    assert result.status == "Completed"
    assert call.result == result
    # The reply was still open (no pause yet): the result ends it.
    assert rest[1:] == [ConversationEnded(result)]
    assert isinstance(rest[0], ReplyEnded)
    assert rest[0].text == "You said: hello there"
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage", "terminate"]
    assert record.types(Direction.OUT)[-1] == "conversationResult"
    assert record.close_code == 1000


async def test_iterating_after_the_close_yields_nothing(blackbox_emulator: EmulatorThread) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(blackbox_emulator.token, server=blackbox_emulator.server) as call:
            await call.terminate()
            await rest_of(call)
        assert await rest_of(call) == []


@pytest.mark.parametrize(
    "script",
    [
        AgentScript(turns=(Turn(match="done", reply=("Bye.",), end=True),)),
        AgentScript(max_turns=1, default_reply=("Noted.",), farewell=("Bye.",)),
    ],
    ids=["end-rule", "max-turns"],
)
async def test_the_agent_ends_the_conversation(
    blackbox_emulator_factory: EmulatorFactory, script: AgentScript
) -> None:
    emulator = blackbox_emulator_factory(script=script)
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server) as call:
            await call.send_text("done")
            events = await rest_of(call)
        (record,) = await finished(emulator)

    assert texts(events)[-1] == "Bye."
    assert isinstance(events[-1], ConversationEnded)
    assert events[-1].result.status == "Completed"
    assert call.state is ConnectionState.CLOSED
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage"]
    assert record.close_code == 1000


async def test_additional_data_reaches_the_agent(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    script = AgentScript(greeting=("Hello, {data.user.name}!",))
    emulator = blackbox_emulator_factory(script=script)
    data = {"user": {"name": "Ada", "id": 7}, "tags": ["a", "b"]}
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server, additional_data=data) as call:
            greeting = await until(call, assistant_said("Hello, Ada!"))
            await call.terminate()
        (record,) = await finished(emulator)

    assert texts(greeting) == ["Hello, Ada!"]
    (initialize,) = [m for m in record.messages(Direction.IN) if m["type"] == "initialize"]
    assert initialize["request"] == {"callType": "chat", "additionalData": data}


async def test_leaving_the_block_terminates_and_closes(
    blackbox_emulator: EmulatorThread,
) -> None:
    with anyio.fail_after(LIMIT):
        async with connect(blackbox_emulator.token, server=blackbox_emulator.server) as call:
            await until(call, assistant_said(GREETING[-1]))
        assert call.state is ConnectionState.CLOSED
        (record,) = await finished(blackbox_emulator)

    assert record.types(Direction.IN) == ["initialize", "terminate"]
    assert record.types(Direction.OUT)[-1] == "conversationResult"
    assert call.result is not None
    assert call.result.status == "Completed"
    assert record.close_code == 1000


async def test_cancelling_the_call_terminates_and_closes(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    # A slow reply keeps the agent talking when the cancellation comes.
    script = AgentScript(default_reply=("one ", "two ", "three ", "four"), chunk_delay=0.2)
    emulator = blackbox_emulator_factory(script=script)
    with anyio.fail_after(LIMIT):
        before = {task.id for task in anyio.get_running_tasks()}
        with anyio.CancelScope() as scope:
            async with connect(
                emulator.token, server=emulator.server, timeouts=Timeouts(close=1)
            ) as call:
                await call.send_text("count")
                await until(call, assistant_said("one "))
                scope.cancel()
                await anyio.sleep_forever()
        after = {task.id for task in anyio.get_running_tasks()}
        (record,) = await finished(emulator)

    assert scope.cancelled_caught
    assert after == before
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage", "terminate"]
    assert record.finished
    assert "four" not in record.texts()
    # The socket is gone, whatever the reader task saw before it was cancelled.
    assert call.state is ConnectionState.CLOSED


async def test_a_task_cancelled_from_outside_terminates_and_closes(
    blackbox_emulator: EmulatorThread,
) -> None:
    started = anyio.Event()

    calls: list[Call] = []

    async def chat() -> None:
        async with connect(blackbox_emulator.token, server=blackbox_emulator.server) as call:
            calls.append(call)
            await until(call, assistant_said(GREETING[-1]))
            started.set()
            await anyio.sleep_forever()

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as group:
            group.start_soon(chat)
            await started.wait()
            group.cancel_scope.cancel()
        (record,) = await finished(blackbox_emulator)

    assert record.types(Direction.IN) == ["initialize", "terminate"]
    assert calls[0].state is ConnectionState.CLOSED


async def test_twenty_concurrent_conversations(blackbox_emulator: EmulatorThread) -> None:
    emulator = blackbox_emulator
    results: dict[int, tuple[list[str], str | None]] = {}

    async def chat(number: int) -> None:
        async with connect(emulator.token, server=emulator.server) as call:
            await call.send_text(f"message {number}")
            events = await until(call, assistant_said(f"message {number}"))
            result = await call.terminate()
        assert result is not None
        results[number] = (texts(events), result.status)

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as group:
            for number in range(20):
                group.start_soon(chat, number)
        records = await finished(emulator)

    assert sorted(results) == list(range(20))
    for number, (said, status) in results.items():
        assert said[-2:] == ["You said: ", f"message {number}"]
        assert status == "Completed"
    assert len(records) == 20
    assert len({record.job_id for record in records}) == 20
    for record in records:
        assert record.types(Direction.IN) == ["initialize", "incomingChatMessage", "terminate"]
        assert record.close_code == 1000
