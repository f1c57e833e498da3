"""Voice calls over real WebRTC on loopback, with a plain aiortc answerer as the caller.

Audio is checked by content: the agent's tones (700 Hz, then 1100 Hz) in what
the caller heard, the caller's 440 Hz tone in the emulator's recording.
"""

from __future__ import annotations

import asyncio
import json
import time
import wave
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from blackbox_emulator import AgentScript, Emulator, EmulatorFactory, OfferKey, OfferStyle
from blackbox_emulator.records import ConversationRecord, Direction
from blackbox_emulator.speech import agent_tone
from blackbox_protocol import ConversationEnded, TextReceived

from tests.blackbox_emulator._answerer import (
    RATE,
    Answerer,
    ToneTrack,
    tone_at,
    until,
    voice_call,
    with_profile,
)

pytestmark = pytest.mark.anyio

#: Two short utterances: about half a second each.
SCRIPT = AgentScript(greeting=("One two.", "Three four."))
FIRST, SECOND = agent_tone(0), agent_tone(1)
LIVE_VOICE = Path(__file__).parents[1] / "blackbox_protocol" / "transcripts" / "voice-live.jsonl"


def _recorded(record: ConversationRecord) -> tuple[int, np.ndarray]:
    assert record.audio_path is not None
    with wave.open(str(record.audio_path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate = wav.getframerate()
        return rate, np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def _offer_of(record: ConversationRecord) -> dict[str, str]:
    (invite,) = [m for m in record.messages(Direction.OUT) if m["type"] == "sdpInvite"]
    data: dict[str, str] = invite["data"]
    return data


def _attributes(sdp: str) -> set[str]:
    return {
        line[2:].split(":")[0]
        for line in sdp.split("\r\n")
        if line.startswith("a=") and not line.startswith("a=X-")
    }


@pytest.mark.parametrize("key", get_args(OfferKey))
@pytest.mark.parametrize("style", get_args(OfferStyle))
async def test_a_call_carries_audio_both_ways(
    style: OfferStyle, key: OfferKey, tmp_path: Path
) -> None:
    async with Emulator(
        script=SCRIPT, offer_style=style, offer_key=key, record_dir=tmp_path
    ) as emu:
        async with voice_call(emu) as (client, answerer, offer):
            await answerer.connected()
            said = [(await client.wait_for(TextReceived)).text for _ in range(2)]
            await until(lambda: tone_at(answerer.heard(), SECOND))
            await client.terminate()
            ended = await client.wait_for(ConversationEnded)
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert said == ["One two.", "Three four."]
    assert ended.result.status == "Completed"
    assert list(_offer_of(record)) == [key]
    media_line = next(line for line in offer.split("\r\n") if line.startswith("m=audio"))
    assert media_line.split()[2] == ("RTP/SAVP" if style == "sip" else "UDP/TLS/RTP/SAVPF")
    heard = answerer.heard()
    assert tone_at(heard, FIRST)
    assert tone_at(heard, SECOND)
    assert not tone_at(heard, 440)
    rate, recorded = _recorded(record)
    assert rate == (8000 if style == "sip" else 48000)
    assert record.audio_path is not None
    assert record.audio_path.parent == tmp_path
    assert f"-{record.job_id}" in record.audio_path.name
    assert tone_at(recorded[:: rate // RATE], 440)
    assert not tone_at(recorded[:: rate // RATE], FIRST)


async def test_the_pytest_factory_takes_the_voice_options(
    blackbox_emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    emu = blackbox_emulator_factory(
        script=SCRIPT, offer_style="browser", offer_key="sdpOffer", record_dir=tmp_path
    )
    async with voice_call(emu) as (client, answerer, offer):
        await answerer.connected()
        await until(lambda: tone_at(answerer.heard(), FIRST))
        await client.terminate()
        await client.until_closed()
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations

    assert "UDP/TLS/RTP/SAVPF" in offer
    assert list(_offer_of(record)) == ["sdpOffer"]
    assert record.audio_path is not None
    assert record.audio_path.parent == tmp_path


async def test_the_sip_style_offer_looks_like_the_live_one() -> None:
    live_offer = json.loads(LIVE_VOICE.read_text().splitlines()[2])["frame"]["data"]["invite"]

    async with Emulator(script=SCRIPT) as emu, voice_call(emu) as (client, answerer, offer):
        await answerer.connected()
        await client.terminate()
        await client.until_closed()

    lines = offer.split("\r\n")
    assert offer.endswith("\r\n")
    assert lines[2] == "s=pjmedia"
    (media_line,) = [line for line in lines if line.startswith("m=")]
    assert media_line.split()[2:] == ["RTP/SAVP", "0", "8", "101"]
    assert [line for line in lines if line.startswith("a=rtpmap:")] == [
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
    ]
    for absent in ("a=group:", "a=mid:", "a=msid", "a=ssrc:", "a=extmap:", "a=end-of-candidates"):
        assert not any(line.startswith(absent) for line in lines), absent
    assert "a=rtcp-mux" in lines
    assert "a=setup:actpass" in lines
    assert sum(line.startswith("a=fingerprint:SHA-256 ") for line in lines) == 1
    assert all(" UDP " in line for line in lines if line.startswith("a=candidate:"))
    # The same attributes as the live offer, no more, no fewer.
    assert _attributes(offer) == _attributes(live_offer)


async def test_the_sip_style_offer_takes_an_rtp_savp_answer(tmp_path: Path) -> None:
    async with Emulator(script=SCRIPT, record_dir=tmp_path) as emu:
        async with voice_call(emu, edit_answer=lambda sdp: with_profile(sdp, "RTP/SAVP")) as (
            client,
            answerer,
            _,
        ):
            await answerer.connected()
            await until(lambda: tone_at(answerer.heard(), SECOND))
            await client.terminate()
            await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    (answer,) = [m for m in record.messages(Direction.IN) if m["type"] == "sdpAnswer"]
    assert " RTP/SAVP 0 8" in answer["data"]["sdpAnswer"]
    assert tone_at(_recorded(record)[1], 440)


def _sip_answer(sdp: str) -> str:
    """An aiortc answer as a SIP stack would write it: pjmedia's shape, like the live answer.

    ``RTP/SAVP``; no BUNDLE group, ``a=mid``, ``a=msid``, ``a=ssrc``; no
    ``a=rtpmap`` for the static G.711 payload types; ``telephone-event``;
    ICE credentials at the session level; ``SHA-256`` in capitals.
    """
    session: list[str] = []
    media: list[str] = []
    for line in sdp.strip().split("\r\n"):
        if line.startswith(("a=group:", "a=msid", "a=mid:", "a=ssrc", "a=rtpmap:")):
            continue
        if line.startswith("m="):
            media.append(with_profile(line, "RTP/SAVP") + " 101")
            media.append("a=rtpmap:101 telephone-event/8000")
        elif line.startswith(("a=ice-ufrag:", "a=ice-pwd:")):
            session.append(line)
        elif media:
            media.append(line.replace("sha-256", "SHA-256"))
        else:
            session.append(line)
    return "\r\n".join(session + media) + "\r\n"


async def test_the_sip_style_offer_takes_a_sip_style_answer(tmp_path: Path) -> None:
    async with Emulator(script=SCRIPT, record_dir=tmp_path) as emu:
        async with voice_call(emu, edit_answer=_sip_answer) as (client, answerer, _):
            await answerer.connected()
            await until(lambda: tone_at(answerer.heard(), SECOND))
            await client.terminate()
            await client.until_closed()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    (answer,) = [m for m in record.messages(Direction.IN) if m["type"] == "sdpAnswer"]
    assert "a=mid" not in answer["data"]["sdpAnswer"]
    assert tone_at(_recorded(record)[1], 440)


async def test_an_answer_aiortc_cannot_use_ends_the_call_failed() -> None:
    def without_fingerprint(sdp: str) -> str:
        return "\r\n".join(line for line in sdp.split("\r\n") if "fingerprint" not in line)

    emu = Emulator(script=SCRIPT)
    async with emu, voice_call(emu, edit_answer=without_fingerprint) as (client, _, _):
        ended = await client.wait_for(ConversationEnded)
        await client.until_closed()

    assert ended.result.status == "Failed"
    assert ended.result.error_message == (
        "the emulator's media failed: the answer has no a=fingerprint: DTLS-SRTP cannot be set up"
    )


async def test_the_echo_agent_plays_the_caller_back_after_the_delay() -> None:
    burst = {"at": float("inf")}
    track = ToneTrack(440.0, playing=lambda t: burst["at"] <= t < burst["at"] + 0.3)
    emu = Emulator(script=SCRIPT, echo_audio_after=0.5)
    async with emu, voice_call(emu, Answerer(track)) as (client, answerer, _):
        await answerer.connected()
        said = [(await client.wait_for(TextReceived)).text for _ in range(2)]
        await asyncio.sleep(0.2)
        burst["at"] = time.monotonic() + 0.1
        await until(lambda: tone_at(answerer.heard(burst["at"]), 440), timeout=3)
        await client.terminate()
        await client.until_closed()

    loud = [at for at, samples in answerer.frames if np.abs(samples).max() > 3000]
    latency = loud[0] - burst["at"]
    # The delay, plus both directions' jitter buffers and packetization.
    assert 0.5 <= latency < 1.2
    assert said == ["One two.", "Three four."]
    # The echo agent's text is unvoiced: nothing but the echo came back.
    assert not tone_at(answerer.heard(), FIRST)


async def test_the_recording_is_valid_while_running_and_after_the_caller_drops(
    tmp_path: Path,
) -> None:
    tasks_before = asyncio.all_tasks()
    async with Emulator(script=SCRIPT, record_dir=tmp_path) as emu:
        async with voice_call(emu) as (client, answerer, _):
            await answerer.connected()
            await client.wait_for(TextReceived)
            path = tmp_path / f"call-1-{emu.conversations[0].job_id}.wav"
            await until(lambda: path.exists() and path.stat().st_size > 44 + 2 * RATE // 2)
            with wave.open(str(path), "rb") as running:
                assert running.getnframes() >= RATE // 2
            # The caller vanishes: no close frame, no terminate.
            client.websocket.transport.abort()
        await emu.wait_until_idle()
        (record,) = emu.conversations

    assert record.close_code is None
    assert record.audio_path == path
    rate, recorded = _recorded(record)
    assert rate == RATE
    assert len(recorded) >= RATE // 2
    assert tone_at(recorded, 440)
    assert path.stat().st_size == 44 + 2 * len(recorded)
    # Nothing is left running: the peers, their listeners, the conversation.
    assert asyncio.all_tasks() <= tasks_before


async def test_stopping_the_emulator_ends_its_calls_media(tmp_path: Path) -> None:
    tasks_before = asyncio.all_tasks()
    emu = Emulator(script=SCRIPT, record_dir=tmp_path)
    await emu.start()
    async with voice_call(emu) as (client, answerer, _):
        await answerer.connected()
        await client.wait_for(TextReceived)
        await emu.stop()
        # The emulator's peer closed the DTLS session: the caller's side ends too.
        await until(lambda: answerer.pc.connectionState == "closed")
        await client.until_closed()
    (record,) = emu.conversations

    assert record.finished
    assert record.close_code == 1001
    assert tone_at(_recorded(record)[1], 440)
    assert asyncio.all_tasks() <= tasks_before
