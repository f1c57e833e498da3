"""Every fault, observed from the client's side."""

from __future__ import annotations

import pytest
from blackbox_emulator import AgentScript, Direction, Emulator, Fault
from blackbox_emulator.faults import HUGE_FRAME_CHARS
from blackbox_protocol import (
    ConfigurationError,
    Connected,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    DisconnectedError,
    ProtocolViolation,
    TextReceived,
    UnknownMessageReceived,
)

from tests.blackbox_emulator._client import open_client

pytestmark = pytest.mark.anyio

TWO_CHUNKS = AgentScript(greeting=("Hello ", "there."), default_reply=("Got ", "it."))


async def test_drop_aborts_the_connection_without_a_close_frame() -> None:
    async with Emulator(fault="drop") as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        events = await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    texts = [e for e in events if isinstance(e, TextReceived)]
    assert [t.text for t in texts] == ["Hello! "]
    assert any(isinstance(e, Connected) for e in events)
    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, DisconnectedError)
    assert failed.error.code is None
    assert events[-1] == ConnectionClosed(None, "")
    assert record.close_code is None


async def test_garbage_is_reported_and_the_conversation_still_completes() -> None:
    async with (
        Emulator(fault=Fault.GARBAGE, script=TWO_CHUNKS) as emu,
        open_client(emu.url_for(emu.token)) as client,
    ):
        await client.initialize()
        await client.wait_for(Connected)
        await client.send_text("hi")
        await client.terminate()
        events = await client.until_closed()

    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert len(violations) == 3
    assert "not JSON" in violations[0].reason
    assert "object" in violations[1].reason
    assert "binary" in violations[2].reason
    (unknown,) = [e for e in events if isinstance(e, UnknownMessageReceived)]
    assert unknown.message.type == "futureFeature"
    texts = [e.text for e in events if isinstance(e, TextReceived) and e.source == "assistant"]
    assert texts == ["Hello ", "there.", "Got ", "it."]
    (ended,) = [e for e in events if isinstance(e, ConversationEnded)]
    assert ended.result.status == "Completed"
    assert events[-1] == ConnectionClosed(1000, "")


async def test_garbage_left_over_goes_out_before_the_result() -> None:
    script = AgentScript(greeting=("Hi.",))
    async with (
        Emulator(fault="garbage", script=script) as emu,
        open_client(emu.url_for(emu.token)) as client,
    ):
        await client.initialize()
        await client.wait_for(TextReceived)
        await client.terminate()
        events = await client.until_closed()

    assert sum(isinstance(e, ProtocolViolation) for e in client.events) == 3
    assert isinstance(
        [e for e in events if not isinstance(e, ConnectionClosed)][-1], ConversationEnded
    )


async def test_silence_sends_nothing_and_never_closes() -> None:
    async with Emulator(fault="silence") as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize()
            with pytest.raises(TimeoutError):
                await client.next_event(timeout=0.5)
            await client.send_text("anyone there?")
            with pytest.raises(TimeoutError):
                await client.next_event(timeout=0.2)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert client.frame_sizes == []
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage"]
    assert record.types(Direction.OUT) == []


async def test_huge_sends_a_frame_over_16_mib_then_goes_on() -> None:
    async with (
        Emulator(fault="huge") as emu,
        open_client(emu.url_for(emu.token), max_size=None) as client,
    ):
        await client.initialize()
        violation = await client.wait_for(ProtocolViolation)
        greeting = await client.wait_for(TextReceived)
        await client.terminate()
        await client.wait_for(ConversationEnded)

    assert max(client.frame_sizes) > 16 * 1024 * 1024
    assert max(client.frame_sizes) > HUGE_FRAME_CHARS
    assert "over the" in violation.reason
    assert greeting.text == "Hello! "


async def test_huge_is_refused_by_a_client_with_a_smaller_limit() -> None:
    async with Emulator(fault="huge") as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize()
            events = await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, DisconnectedError)
    # websockets' client fails the connection: close code 1009, message too big.
    assert record.close_code == 1009


async def test_error_sends_web_integration_is_not_enabled() -> None:
    async with Emulator(fault="error") as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        events = await client.until_closed()

    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, ConfigurationError)
    assert failed.error.message == "Web integration is not enabled"
    assert not any(isinstance(e, Connected) for e in events)
    assert events[-1] == ConnectionClosed(1008, "Web integration is not enabled")


def test_faults_are_chosen_by_name() -> None:
    assert Fault.parse("DROP") is Fault.DROP
    assert Fault.parse(Fault.HUGE) is Fault.HUGE
    assert Fault.parse(None) is None
    listed = "choose from drop, garbage, drop-after-result, silence, huge, error"
    with pytest.raises(ValueError, match=listed):
        Fault.parse("explode")
    with pytest.raises(ValueError, match="unknown fault"):
        Emulator(fault="explode")
