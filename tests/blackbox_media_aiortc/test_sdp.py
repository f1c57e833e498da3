"""The SDP munging, on real SDP: the live service's offer, and aiortc's own offers and answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiortc import (
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS
from blackbox_media_aiortc import OfferError
from blackbox_media_aiortc._sdp import (
    FINGERPRINT_ALGORITHMS,
    NormalizedOffer,
    normalize_offer,
    rewrite_answer,
)

pytestmark = pytest.mark.anyio

TRANSCRIPTS = Path(__file__).parents[1] / "blackbox_protocol" / "transcripts"


def recorded_offers(path: Path) -> list[str]:
    """The offers (``sdpInvite``) in a recorded transcript."""
    offers = []
    for line in path.read_text().splitlines():
        frame = json.loads(line).get("frame", {})
        if frame.get("type") == "sdpInvite":
            data = frame["data"]  # the live service says "invite", its docs "sdpOffer"
            offers.append(data.get("invite") or data["sdpOffer"])
    return offers


@pytest.fixture(scope="module")
def live_offer() -> str:
    """The offer the live service sent (a SIP media stack's), from the recorded transcript."""
    (offer,) = recorded_offers(TRANSCRIPTS / "voice-live.jsonl")
    return offer


def drop(sdp: str, *prefixes: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefixes))


def media_lines(sdp: str) -> list[str]:
    return re.findall(r"^m=[^\r\n]*", sdp, re.MULTILINE)


async def aiortc_answer(offer: NormalizedOffer) -> str:
    """What aiortc answers to the normalized offer (gathered), as ``AiortcSession`` gets it."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        pc.addTrack(AudioStreamTrack())
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


async def aiortc_offer(*kinds: str, datachannel: bool = False) -> str:
    """aiortc's own offer (browser-shaped: UDP/TLS/RTP/SAVPF, BUNDLE, mids)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendrecv")
        if datachannel:
            pc.createDataChannel("chat")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


def test_the_transcript_offer_is_the_documented_shape(live_offer: str) -> None:
    assert "m=audio 4000 RTP/SAVP 0 8 101" in live_offer
    assert "a=group:BUNDLE" not in live_offer
    assert "a=mid:" not in live_offer


@pytest.mark.parametrize(
    "path",
    sorted(p for p in TRANSCRIPTS.glob("*.jsonl") if recorded_offers(p)),
    ids=lambda p: p.name,
)
async def test_every_recorded_offer_is_answered_in_its_own_terms(path: Path) -> None:
    for recorded in recorded_offers(path):
        offer = normalize_offer(recorded)
        answer = rewrite_answer(await aiortc_answer(offer), offer)
        (offered,), (answered,) = media_lines(recorded), media_lines(answer)
        assert answered.split()[2] == offered.split()[2]
        assert set(answered.split()[3:]) <= set(offered.split()[3:])


def test_the_live_offer_needs_no_change(live_offer: str) -> None:
    offer = normalize_offer(live_offer)
    assert offer.changes == ()
    assert offer.profile == "RTP/SAVP"
    assert offer.payload_types == (0, 8, 101)
    assert not offer.bundle
    assert len(offer.sections) == 1
    assert offer.sdp.replace("\r\n", "\n").strip() == live_offer.replace("\r\n", "\n").strip()


def test_missing_rtcp_mux_setup_and_direction_are_added(live_offer: str) -> None:
    offer = normalize_offer(drop(live_offer, "a=rtcp-mux", "a=setup", "a=sendrecv"))
    assert "a=rtcp-mux\r\n" in offer.sdp
    assert "a=setup:actpass\r\n" in offer.sdp
    assert "a=sendrecv\r\n" in offer.sdp
    assert len(offer.changes) == 3


def test_a_session_level_direction_moves_to_the_audio_section(live_offer: str) -> None:
    sdp = drop(live_offer, "a=sendrecv").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    offer = normalize_offer(sdp)
    audio = offer.sdp[offer.sdp.index("m=audio") :]
    assert "a=sendonly\r\n" in audio


def test_static_payload_types_get_their_rtpmap(live_offer: str) -> None:
    sdp = drop(live_offer, "a=rtpmap:0", "a=rtpmap:8").replace(
        "RTP/SAVP 0 8 101", "RTP/SAVP 18 0 8 97 101"
    )
    sdp += "a=fmtp:18 annexb=no\r\na=fmtp:97 mode=20\r\n"
    offer = normalize_offer(sdp)
    for rtpmap in ("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:18 G729/8000"):
        assert rtpmap in offer.sdp
    assert "a=fmtp:18 annexb=no" in offer.sdp
    # 97 is dynamic and has no rtpmap: its fmtp would make aiortc's parser raise.
    assert "a=fmtp:97" not in offer.sdp
    assert offer.payload_types == (18, 0, 8, 97, 101)


def test_lines_aiortc_chokes_on_are_dropped_or_trimmed(live_offer: str) -> None:
    sdp = live_offer + (
        "a=candidate:1 1 UDP\r\n"
        "a=ssrc:1234\r\n"
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n"
    )
    offer = normalize_offer(sdp)
    assert "a=candidate:1 1 UDP\r\n" not in offer.sdp
    assert "a=ssrc:1234" not in offer.sdp
    assert "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" in offer.sdp


def test_bare_newlines_a_lowercase_profile_and_a_port_count_are_read(live_offer: str) -> None:
    sdp = live_offer.replace("\r\n", "\n").replace("4000 RTP/SAVP", "4000/1 rtp/savp")
    offer = normalize_offer(sdp)
    assert offer.profile == "rtp/savp"  # echoed as offered
    assert "m=audio 4000 RTP/SAVP 0 8 101\r\n" in offer.sdp  # as aiortc's parser needs it


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: drop(s, "a=fingerprint"), "no DTLS fingerprint"),
        (
            lambda s: drop(s, "a=fingerprint") + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n",
            "SDES",
        ),
        (lambda s: s.replace("fingerprint:SHA-256", "fingerprint:SHA-1"), "sha-1; aiortc"),
        (lambda s: drop(s, "a=ice-ufrag"), "no ICE credentials"),
        (lambda s: drop(s, "a=ice-pwd"), "no ICE credentials"),
        (lambda s: s.replace("a=setup:actpass", "a=setup:holdconn"), "holdconn"),
        (lambda s: s.replace("0 8 101", "0 8 telephone"), "not RTP payload types"),
        (lambda s: s.replace("0 8 101", "0 8 72"), "reserved for RTCP"),
        (lambda s: s.replace("m=audio 4000", "m=audio 0"), "offers no audio"),
        (lambda s: s.replace("c=IN IP4 203.0.113.10", "c=IN IP4"), "ipaddress_from_sdp"),
    ],
)
def test_offers_that_cannot_be_answered_say_why(
    live_offer: str, change: object, reason: str
) -> None:
    assert callable(change)
    with pytest.raises(OfferError, match=reason):
        normalize_offer(change(live_offer))


def test_our_fingerprint_hashes_are_the_ones_aiortc_verifies() -> None:
    assert set(X509_DIGEST_ALGORITHMS) == FINGERPRINT_ALGORITHMS


async def test_the_answer_to_the_live_offer_keeps_its_profile_and_codecs(live_offer: str) -> None:
    offer = normalize_offer(live_offer)
    raw = await aiortc_answer(offer)
    assert " UDP/TLS/RTP/SAVPF " in raw  # what aiortc writes, whatever it was offered
    assert "a=group:BUNDLE" in raw

    answer = rewrite_answer(raw, offer)
    (m,) = media_lines(answer)
    profile, formats = m.split()[2], m.split()[3:]
    assert profile == "RTP/SAVP"
    assert formats == ["0", "8"]  # telephone-event is offered, but aiortc has none
    assert "a=group:BUNDLE" not in answer
    assert "a=setup:active" in answer
    assert "a=end-of-candidates" in answer


async def test_a_browser_offer_keeps_bundle_and_the_other_sections_are_rejected() -> None:
    offer = normalize_offer(await aiortc_offer("video", "audio", datachannel=True))
    assert offer.bundle
    assert [s.kind for s in offer.sections] == ["video", "audio", "application"]
    assert offer.audio_index == 1
    assert len(media_lines(offer.sdp)) == 1
    assert "a=group:BUNDLE 1\r\n" in offer.sdp  # only the audio's mid is left

    answer = rewrite_answer(await aiortc_answer(offer), offer)
    video, audio, application = media_lines(answer)
    assert video == "m=video 0 UDP/TLS/RTP/SAVPF " + offer.sections[0].formats
    assert audio.startswith("m=audio ")
    assert audio.split()[2] == "UDP/TLS/RTP/SAVPF"
    assert set(audio.split()[3:]) <= {str(pt) for pt in offer.payload_types}
    assert application == "m=application 0 UDP/DTLS/SCTP webrtc-datachannel"
    assert "a=group:BUNDLE 1\r\n" in answer
    for mid in ("0", "1", "2"):
        assert f"a=mid:{mid}\r\n" in answer


async def test_an_audio_only_browser_offer_is_answered_as_aiortc_would() -> None:
    offer = normalize_offer(await aiortc_offer("audio"))
    assert offer.changes == ()
    raw = await aiortc_answer(offer)
    assert rewrite_answer(raw, offer) == raw


def test_payload_types_the_offer_lacks_are_dropped_from_the_answer(live_offer: str) -> None:
    offer = normalize_offer(live_offer)
    raw = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0\r\nc=IN IP4 0.0.0.0\r\n"
        "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtcp-fb:96 nack\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=setup:active\r\n"
    )
    answer = rewrite_answer(raw, offer)
    assert media_lines(answer) == ["m=audio 9 RTP/SAVP 0"]
    assert ":96 " not in answer
    assert "a=rtpmap:0 PCMU/8000" in answer

    with pytest.raises(OfferError, match="no codec"):
        rewrite_answer(raw.replace(" 96 0\r\n", " 96\r\n"), offer)
