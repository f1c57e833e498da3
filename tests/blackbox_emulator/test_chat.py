"""Chat conversations with the emulator, over real loopback sockets."""

from __future__ import annotations

import asyncio

import pytest
from blackbox_emulator import AgentScript, Direction, Emulator, ToolSpec, Turn
from blackbox_protocol import (
    Connected,
    ConnectionClosed,
    ConversationEnded,
    EventReceived,
    ProtocolViolation,
    TextReceived,
    ToolRequested,
)

from tests.blackbox_emulator._client import open_client

pytestmark = pytest.mark.anyio

CHUNKED = AgentScript(
    greeting=("Hi! ", "How can I help?"),
    default_reply=("You ", "said: ", "{text}"),
    chunk_delay=0.01,
)

WEATHER = AgentScript(
    greeting=("Weather desk. ",),
    turns=(
        Turn(
            match=r"(?i)weather in (?P<city>\w+)",
            tool=ToolSpec("get_weather", {"city": "{city}", "units": "metric"}),
            reply=("In {city} it is ", "{tool_result.temperature} degrees."),
        ),
    ),
)


async def test_a_chat_has_greeting_echo_and_a_chunked_reply() -> None:
    async with Emulator(script=CHUNKED) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize(additional_data={"userId": "u-1"})
        connected = await client.wait_for(Connected)
        opened = await client.next_event()
        greeting = [await client.wait_for(TextReceived) for _ in range(2)]
        await client.send_text("hello there")
        echo = await client.wait_for(TextReceived)
        reply = [await client.wait_for(TextReceived) for _ in range(3)]

    assert connected.job_id is not None
    assert len(connected.job_id) == 32
    assert isinstance(opened, EventReceived)
    assert opened.name == "opened"
    assert [(t.source, t.text) for t in greeting] == [
        ("assistant", "Hi! "),
        ("assistant", "How can I help?"),
    ]
    assert (echo.source, echo.text) == ("user", "hello there")
    assert "".join(t.text for t in reply) == "You said: hello there"
    assert {t.source for t in reply} == {"assistant"}


async def test_the_record_keeps_every_frame_both_ways() -> None:
    async with Emulator(script=CHUNKED) as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize()
            await client.wait_for(Connected)
            await client.send_text("one")
            await client.terminate()
            await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert client.of(ProtocolViolation) == []
    assert record.finished
    assert record.call_type == "chat"
    assert record.close_code == 1000
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage", "terminate"]
    assert record.types(Direction.OUT) == [
        "event connection",
        "event opened",
        *["text"] * 6,
        "conversationResult",
    ]
    assert record.texts("user") == ["one"]
    assert record.job_id == record.messages(Direction.OUT)[0]["data"]["jobId"]
    assert "token=***" in record.path


async def test_a_tool_request_is_answered_and_the_reply_uses_its_result() -> None:
    async with Emulator(script=WEATHER) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(TextReceived)
        await client.send_text("What is the weather in Paris?")
        echo = await client.wait_for(TextReceived)
        request = await client.wait_for(ToolRequested)
        await client.reply_to_tool(request.id, {"temperature": 21})
        reply = [await client.wait_for(TextReceived) for _ in range(2)]

    assert echo.source == "user"
    assert request.name == "get_weather"
    assert dict(request.args) == {"city": "Paris", "units": "metric"}
    assert len(request.id) == 32
    assert "".join(t.text for t in reply) == "In Paris it is 21 degrees."


async def test_terminate_sends_the_result_then_closes() -> None:
    script = AgentScript(result=AgentScript.default().result)
    async with Emulator(script=script) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)
        await client.terminate()
        events = await client.until_closed()

    ended = [e for e in events if isinstance(e, ConversationEnded)]
    assert len(ended) == 1
    assert ended[0].result.status == "Completed"
    assert ended[0].result.error_message is None
    assert events[-1] == ConnectionClosed(1000, "")
    assert client.core.error is None


async def test_the_agent_ends_the_conversation_after_max_turns() -> None:
    script = AgentScript(max_turns=2, farewell=("That is all ", "for today."))
    async with Emulator(script=script) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.send_text("first")
        await client.send_text("second")
        events = await client.until_closed()

    texts = [e.text for e in events if isinstance(e, TextReceived) and e.source == "assistant"]
    assert texts[-2:] == ["That is all ", "for today."]
    assert texts.count("You said: ") == 2
    ended = [e for e in events if isinstance(e, ConversationEnded)]
    assert [e.result.status for e in ended] == ["Completed"]
    assert events[-1] == ConnectionClosed(1000, "")


async def test_a_rule_with_end_ends_the_conversation() -> None:
    async with Emulator() as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.send_text("OK, bye!")
        events = await client.until_closed()

    texts = [e.text for e in events if isinstance(e, TextReceived) and e.source == "assistant"]
    assert texts[-2:] == ["Goodbye! ", "Have a nice day."]
    assert any(isinstance(e, ConversationEnded) for e in events)


async def test_the_greeting_can_use_additional_data() -> None:
    script = AgentScript(greeting=("Hello, {data.name}!",))
    async with Emulator(script=script) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize(additional_data={"name": "Igor"})
        greeting = await client.wait_for(TextReceived)

    assert greeting.text == "Hello, Igor!"


async def test_fifty_concurrent_conversations_all_complete() -> None:
    async def converse(emu: Emulator, number: int) -> str:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize()
            await client.wait_for(Connected)
            await client.send_text(f"message {number}")
            await client.terminate()
            events = await client.until_closed(timeout=20)
        assert any(isinstance(e, ConversationEnded) for e in events)
        replies = [
            e.text for e in events if isinstance(e, TextReceived) and e.source == "assistant"
        ]
        return replies[-1]

    async with Emulator() as emu:
        last_replies = await asyncio.gather(*(converse(emu, n) for n in range(50)))
        await emu.wait_until_idle()
        records = emu.conversations

    assert last_replies == [f"message {n}" for n in range(50)]
    assert len(records) == 50
    assert all(r.finished and r.close_code == 1000 for r in records)
    assert len({r.job_id for r in records}) == 50
