"""``webCall`` through the media hook, options and the script's ``[voice]`` table (no WebRTC)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from blackbox_emulator import AgentScript, Emulator, MediaHook, ScriptError, VoiceOptions
from blackbox_emulator.records import Direction
from blackbox_protocol import (
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
        self.said: list[str] = []
        self.closed = 0

    async def offer(self) -> str:
        return OFFER

    async def answered(self, sdp: str) -> None:
        self.answers.append(sdp)

    async def speak(self, text: str) -> None:
        self.said.append(text)

    @property
    def recording(self) -> Path | None:
        return Path("caller.wav")

    async def aclose(self) -> None:
        self.closed += 1


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
    # Each chunk is voiced as it is sent.
    assert peer.said == ["Hello! ", "This is the BlackBox emulator. ", "How can I help?"]
    assert peer.closed == 1
    assert record.audio_path == Path("caller.wav")
    assert "audio_path='caller.wav'" in repr(record)
    assert record.call_type == "webCall"
    invite = record.messages(Direction.OUT)[2]
    # The live service's key for the offer.
    assert invite["type"] == "sdpInvite"
    assert invite["data"] == {"invite": OFFER}


async def test_the_documented_offer_key_can_be_chosen() -> None:
    async with Emulator(media=RecordingMedia, offer_key="sdpOffer") as emu:
        async with open_client(emu.url_for(emu.token)) as client:
            await client.initialize("webCall")
            offer = await client.wait_for(OfferReceived)
            await client.terminate()
            await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert offer.sdp == OFFER
    assert record.messages(Direction.OUT)[2]["data"] == {"sdpOffer": OFFER}


async def test_a_chat_never_speaks_through_the_hook() -> None:
    peers: list[RecordingMedia] = []

    def media(additional_data: Mapping[str, Any] | None) -> MediaHook:
        peers.append(RecordingMedia(additional_data))
        return peers[-1]

    async with Emulator(media=media) as emu, open_client(emu.url_for(emu.token)) as client:
        await client.initialize("chat")
        await client.wait_for(TextReceived)
        await client.terminate()
        ended = await client.wait_for(ConversationEnded)

    assert ended.result.status == "Completed"
    assert peers == []


def test_the_emulators_options_override_the_scripts() -> None:
    script = AgentScript(voice=VoiceOptions(offer_style="browser", echo_audio_after=0.25))

    assert Emulator(script=script).voice == VoiceOptions("browser", "invite", 0.25)
    assert Emulator(script=script, offer_style="sip", offer_key="sdpOffer").voice == (
        VoiceOptions("sip", "sdpOffer", 0.25)
    )
    assert Emulator(echo_audio_after=0).voice.echo_audio_after == 0
    assert Emulator().voice == VoiceOptions()
    assert Emulator().record_dir is None
    assert Emulator(record_dir="calls").record_dir == Path("calls")
    with pytest.raises(ScriptError, match="offer_style: must be one of 'sip', 'browser'"):
        Emulator(offer_style="webrtc")  # type: ignore[arg-type]


def test_the_script_file_has_a_voice_table() -> None:
    toml = """
greeting = "Hi."

[voice]
offer_style = "browser"
offer_key = "sdpOffer"
echo_audio_after = 0.5
"""
    script = AgentScript.parse(toml, format="toml")

    assert script.voice == VoiceOptions(
        offer_style="browser", offer_key="sdpOffer", echo_audio_after=0.5
    )
    assert AgentScript.parse('{"voice": {"echo_audio_after": 1}}', format="json").voice == (
        VoiceOptions(echo_audio_after=1.0)
    )
    assert AgentScript.default().voice == VoiceOptions()


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        ('{"offer_style": "SIP"}', "voice.offer_style: must be one of 'sip', 'browser'"),
        ('{"offer_key": "offer"}', "voice.offer_key: must be one of 'invite', 'sdpOffer'"),
        ('{"offer_key": 1}', "voice.offer_key: expected a string, got a number"),
        ('{"echo_audio_after": -1}', "voice.echo_audio_after: must be zero or more seconds"),
        ('{"echo_audio_after": true}', "voice.echo_audio_after: expected a number of seconds"),
        ('{"echo": 1}', "voice.echo: unknown field"),
        ("[]", "voice: expected a table, got a list"),
    ],
)
def test_a_bad_voice_table_is_refused(voice: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        AgentScript.parse(f'{{"voice": {voice}}}', format="json", source="agent.json")


def test_chat_does_not_import_aiortc() -> None:
    code = """
import sys, time, json
import blackbox_emulator.pytest_plugin
from blackbox_emulator import run_in_thread
from websockets.sync.client import connect

with run_in_thread() as emu:
    with connect(emu.url_for(emu.token)) as ws:
        ws.send(json.dumps({"type": "initialize", "request": {"callType": "chat"}}))
        ws.recv(timeout=5)
    emu.wait_until_idle(timeout=5)
print(sorted(name for name in ("aiortc", "av", "numpy") if name in sys.modules))
"""
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert shown.stdout.strip() == "[]"
