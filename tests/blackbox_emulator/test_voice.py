"""``webCall``: refused without a media hook; with one, the offer step comes before the agent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from blackbox_emulator import Emulator, MediaHook
from blackbox_emulator.records import Direction
from blackbox_protocol import (
    Connected,
    ConnectionClosed,
    ConversationEnded,
    OfferReceived,
    TextReceived,
)

from tests.blackbox_emulator._client import open_client

pytestmark = pytest.mark.anyio

OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
ANSWER = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class RecordingMedia:
    """A stand-in media peer: a fixed offer; it remembers what happened to it."""

    def __init__(self, additional_data: Mapping[str, Any] | None) -> None:
        self.additional_data = additional_data
        self.answers: list[str] = []
        self.closed = 0

    async def offer(self) -> str:
        return OFFER

    async def answered(self, sdp: str) -> None:
        self.answers.append(sdp)

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_web_call_without_media_ends_failed() -> None:
    async with Emulator() as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize("webCall")
        events = await client.until_closed()

    assert any(isinstance(e, Connected) for e in events)
    (ended,) = [e for e in events if isinstance(e, ConversationEnded)]
    assert ended.result.status == "Failed"
    assert ended.result.error_message == "voice is not supported by this emulator yet"
    assert events[-1] == ConnectionClosed(1000, "")


async def test_a_media_hook_offers_then_the_agent_speaks() -> None:
    peers: list[RecordingMedia] = []

    def media(additional_data: Mapping[str, Any] | None) -> MediaHook:
        peers.append(RecordingMedia(additional_data))
        return peers[-1]

    async with Emulator(media=media) as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize("webCall", additional_data={"userId": "u-1"})
            offer = await client.wait_for(OfferReceived)
            await client.answer(ANSWER)
            greeting = await client.wait_for(TextReceived)
            await client.terminate()
            await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert offer.sdp == OFFER
    assert greeting.text == "Hello! "
    (peer,) = peers
    assert peer.additional_data == {"userId": "u-1"}
    assert peer.answers == [ANSWER]
    assert peer.closed == 1
    assert record.call_type == "webCall"
    invite = record.messages(Direction.OUT)[2]
    # The live service's key for the offer.
    assert invite["type"] == "sdpInvite"
    assert invite["data"] == {"invite": OFFER}
