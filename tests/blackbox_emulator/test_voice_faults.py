"""The voice faults, seen from a client: a plain aiortc answerer over the SDK's core."""

from __future__ import annotations

import json
import time

import anyio
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from blackbox_emulator import AgentScript, Emulator, Fault
from blackbox_emulator.faults import DUPLICATE_OFFER_AFTER
from blackbox_emulator.records import Direction
from blackbox_emulator.voice import VoicePeer
from blackbox_protocol import (
    Connected,
    ConversationEnded,
    ConversationFailed,
    ConversationResultData,
    OfferReceived,
    ProtocolViolation,
    RemoteProtocolError,
    TextReceived,
)

from tests.blackbox_emulator._answerer import voice_call
from tests.blackbox_emulator._client import open_client

pytestmark = pytest.mark.anyio

SCRIPT = AgentScript(greeting=("Hello.",))


def wrong_password(sdp: str) -> str:
    """The answer with another ICE password: the emulator's checks all fail, it never connects."""
    return "\r\n".join(
        "a=ice-pwd:" + "x" * 22 if line.startswith("a=ice-pwd:") else line
        for line in sdp.split("\r\n")
    )


async def test_no_offer_never_sends_an_sdp_invite() -> None:
    async with Emulator(script=SCRIPT, fault="no-offer") as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize("webCall")
            await client.wait_for(Connected)
            with pytest.raises(TimeoutError):
                await client.wait_for(OfferReceived, timeout=1.5)
            # The rest of the conversation still works: the client can give up cleanly.
            await client.terminate()
            ended = await client.wait_for(ConversationEnded)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert ended.result.status == "Completed"
    assert "sdpInvite" not in record.types(Direction.OUT)


async def test_a_second_offer_arrives_after_the_answer() -> None:
    async with Emulator(script=SCRIPT, fault=Fault.SECOND_OFFER) as emu:
        async with voice_call(emu) as (client, answerer, offer):
            await answerer.connected()
            failed = await client.wait_for(ConversationFailed)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    # There is no renegotiation in this protocol: the client's core fails the call.
    assert isinstance(failed.error, RemoteProtocolError)
    assert str(failed.error) == (
        "sdpInvite with a new offer in state active: the conversation cannot go on"
    )
    invites = [m for m in record.messages(Direction.OUT) if m["type"] == "sdpInvite"]
    assert invites[0]["data"]["invite"] == offer
    second = invites[1]["data"]["invite"]
    # The same offer, as a new version of the session (a re-INVITE).
    origin, new_origin = offer.split("\r\n")[1].split(), second.split("\r\n")[1].split()
    assert int(new_origin[2]) == int(origin[2]) + 1
    assert second.split("\r\n")[2:] == offer.split("\r\n")[2:]


async def test_a_duplicate_offer_is_the_same_frame_again_and_the_call_goes_on() -> None:
    async with Emulator(script=SCRIPT, fault=Fault.DUPLICATE_OFFER) as emu:
        async with voice_call(emu) as (client, answerer, offer):
            await answerer.connected()
            said = await client.wait_for(TextReceived)
            await client.terminate()
            ended = await client.wait_for(ConversationEnded)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    # The client's core reports the repeat and does not answer it again.
    (violation,) = client.of(ProtocolViolation)
    assert violation.reason == "the offer again (the same SDP): ignored, it is answered once"
    assert len(client.of(OfferReceived)) == 1
    invites = [f for f in record.frames if f.direction is Direction.OUT and "sdpInvite" in f.data]
    assert [json.loads(f.data)["data"] for f in invites] == [{"invite": offer}] * 2
    assert invites[1].time - invites[0].time >= DUPLICATE_OFFER_AFTER
    assert record.types(Direction.IN).count("sdpAnswer") == 1
    assert (said.text, ended.result.status) == ("Hello.", "Completed")


async def test_a_bad_offer_is_refused_by_aiortc() -> None:
    async with Emulator(script=SCRIPT, fault="bad-offer", offer_key="sdpOffer") as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize("webCall")
            offer = await client.wait_for(OfferReceived)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            try:
                with pytest.raises(ValueError, match="invalid literal for int"):
                    await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            finally:
                await pc.close()
            await client.terminate()
            ended = await client.wait_for(ConversationEnded)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert offer.sdp.startswith("v=0\r\n")
    assert ended.result.status == "Completed"
    (invite,) = [m for m in record.messages(Direction.OUT) if m["type"] == "sdpInvite"]
    assert list(invite["data"]) == ["sdpOffer"]


async def test_no_ice_never_connects() -> None:
    emu = Emulator(script=SCRIPT, fault="no-ice")
    async with emu, voice_call(emu) as (client, answerer, offer):
        # The agent still greets, in text.
        greeting = await client.wait_for(TextReceived)
        with pytest.raises(TimeoutError):
            await answerer.connected(timeout=3)
        assert answerer.pc.connectionState != "connected"
        await client.terminate()
        ended = await client.wait_for(ConversationEnded)

    assert greeting.text == "Hello."
    assert ended.result.status == "Completed"
    candidates = [line for line in offer.split("\r\n") if line.startswith("a=candidate:")]
    assert len(candidates) == 1
    assert "a=fingerprint:SHA-256 " in offer


async def test_media_that_never_connects_ends_the_call_failed() -> None:
    def media(additional_data: object) -> VoicePeer:
        return VoicePeer(connect_timeout=1.0)

    emu = Emulator(script=SCRIPT, media=media)
    async with emu, voice_call(emu, edit_answer=wrong_password) as (client, _, _):
        ended = await client.wait_for(ConversationEnded, timeout=5)

    assert ended.result.status == "Failed"
    assert ended.result.error_message == (
        "the emulator's media failed: the media did not connect within 1 s (ICE and DTLS)"
    )


async def test_terminate_while_the_media_sets_up_is_answered_at_once() -> None:
    """An answer that can never connect, then ``terminate`` a second later: the script's result.

    The emulator reads the socket while ICE and DTLS run, so the ``terminate``
    is answered at once, and the record holds what was on the wire, in order.
    """

    script = AgentScript(
        greeting=("Hello.",),
        result=ConversationResultData(status="Completed", extra={"note": "scripted"}),
    )
    emu = Emulator(script=script)  # the media's own connect timeout: 10 s
    async with emu, voice_call(emu, edit_answer=wrong_password) as (client, _, _):
        await anyio.sleep(1.0)
        await client.terminate()
        sent = time.monotonic()
        ended = await client.wait_for(ConversationEnded, timeout=5)
        waited = time.monotonic() - sent
        await client.until_closed()
    (record,) = emu.conversations

    assert waited < 1.0, f"the result came {waited:.1f} s after terminate"
    assert ended.result.status == "Completed"
    assert ended.result.extra == {"note": "scripted"}
    assert record.types(Direction.IN) == ["initialize", "sdpAnswer", "terminate"]
    assert record.types(Direction.OUT)[-2:] == ["event closed", "conversationResult"]
    times = [frame.time for frame in record.frames]
    assert times == sorted(times)
