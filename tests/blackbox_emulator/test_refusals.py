"""What the emulator refuses: tokens, origins, paths, a late or second ``initialize``."""

from __future__ import annotations

import logging

import pytest
from blackbox_emulator import Emulator
from blackbox_emulator.records import Direction
from blackbox_protocol import (
    AuthenticationError,
    ClientBugError,
    ConfigurationError,
    Connected,
    ConnectionClosed,
    ConversationFailed,
    ServiceError,
    TextReceived,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.blackbox_emulator._client import CLIENT_LOGGER, open_client

pytestmark = pytest.mark.anyio


async def refusal(url: str, *, origin: str | None = None) -> tuple[ServiceError, ConnectionClosed]:
    """Open a chat at ``url``; return the error the client got and how the socket closed."""
    async with open_client(url, origin=origin) as client:
        await client.initialize()
        events = await client.until_closed()
    failed = [e for e in events if isinstance(e, ConversationFailed)]
    assert len(failed) == 1
    assert not any(isinstance(e, Connected) for e in events)
    error = failed[0].error
    assert isinstance(error, ServiceError)
    closed = events[-1]
    assert isinstance(closed, ConnectionClosed)
    return error, closed


async def test_a_missing_token_is_an_authentication_error() -> None:
    async with Emulator() as emu:
        error, closed = await refusal(emu.url_for(None))
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert isinstance(error, AuthenticationError)
    assert error.message == "Missing token"
    assert closed.code == 1008
    assert record.error == "Missing token"
    assert record.close_code == 1008


async def test_an_empty_token_is_missing_too() -> None:
    async with Emulator() as emu:
        error, _ = await refusal(f"{emu.url_for(None)}?token=")

    assert error.message == "Missing token"


async def test_a_wrong_token_is_an_authentication_error() -> None:
    async with Emulator(token="right") as emu:
        error, closed = await refusal(emu.url_for("wrong"))

    assert isinstance(error, AuthenticationError)
    assert error.message == "Invalid token"
    assert closed.code == 1008


async def test_a_token_with_reserved_characters_is_url_encoded() -> None:
    async with Emulator(token="a/b+c=d&e") as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)


async def test_an_origin_not_allowed_is_a_configuration_error() -> None:
    allowed = ["https://shop.example"]
    async with Emulator(allowed_origins=allowed) as emu:
        error, closed = await refusal(emu.url_for(emu.token), origin="https://evil.example")
        missing, _ = await refusal(emu.url_for(emu.token))
        async with open_client(emu.url_for(emu.token), origin="https://shop.example") as client:
            await client.initialize()
            await client.wait_for(TextReceived)

    assert isinstance(error, ConfigurationError)
    assert error.message == "Origin not allowed"
    assert missing.message == "Origin not allowed"
    assert closed.code == 1008


async def test_any_other_path_is_an_http_404() -> None:
    async with Emulator() as emu:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{emu.server}/api/v1/ws/dev?token={emu.token}"):
                pass
        conversations = emu.conversations

    assert refused.value.response.status_code == 404
    assert conversations == []


async def test_no_initialize_in_time_is_init_message_not_received() -> None:
    async with (
        Emulator(initialize_timeout=0.2) as emu,
        open_client(emu.url_for(emu.token)) as client,
    ):
        events = await client.until_closed()

    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, ClientBugError)
    assert failed.error.message == "Init message not received"
    assert events[-1] == ConnectionClosed(1008, "Init message not received")


async def test_a_second_initialize_is_refused() -> None:
    async with Emulator() as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)
        # The client's core would refuse to send it twice: write the frame by hand.
        first = emu.conversations[0].frames[0].data
        await client.websocket.send(first)
        events = await client.until_closed()
        await emu.wait_until_idle()
        record = emu.conversations[0]

    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, ClientBugError)
    assert failed.error.message == "Multiple init messages received"
    assert record.error == "Multiple init messages received"
    assert record.close_code == 1008


async def test_the_token_stays_out_of_logs_and_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "tok-SECRET-1234"
    async with Emulator(token=token) as emu:
        async with open_client(emu.url_for(token)) as client:
            await client.initialize()
            await client.send_text("hello")
            await client.terminate()
            await client.until_closed()
        await refusal(emu.url_for("wrong-SECRET-5678"))
        with pytest.raises(InvalidStatus):
            async with connect(f"{emu.server}/elsewhere?token={token}", logger=CLIENT_LOGGER):
                pass
        await emu.wait_until_idle()
        shown = [repr(emu), *(repr(r) for r in emu.conversations)]
        shown += [r.path for r in emu.conversations]

    emulator_logs = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGER.name)]
    assert any("GET /api/v1/ws/webCall?token=***" in r.getMessage() for r in emulator_logs)
    for text in [*(r.getMessage() for r in emulator_logs), *shown]:
        assert "SECRET" not in text
    assert any(r.direction is Direction.OUT for r in emu.conversations[0].frames)


async def test_a_frame_over_1_mi_characters_is_too_large_message() -> None:
    async with Emulator() as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize()
        await client.wait_for(Connected)
        await client.websocket.send(
            '{"type":"incomingChatMessage","content":"' + "x" * 2**20 + '"}'
        )
        events = await client.until_closed()

    (failed,) = [e for e in events if isinstance(e, ConversationFailed)]
    assert isinstance(failed.error, ClientBugError)
    assert failed.error.message == "Too large message"
    assert events[-1] == ConnectionClosed(1008, "Too large message")
