"""The SDP rewriting behind the SIP-style offer, on canned text (no WebRTC)."""

from __future__ import annotations

import pytest
from aiortc.sdp import SessionDescription
from blackbox_emulator._sdp import (
    answer_for_aiortc,
    bad_offer,
    candidate_hosts,
    next_version,
    redirect_candidates,
    sip_offer,
)

#: An offer as aiortc 1.16 makes it with G.711 preferred (values shortened).
AIORTC_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4004621396 4004621396 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=audio 36353 UDP/TLS/RTP/SAVPF 0 8",
        "c=IN IP4 192.0.2.2",
        "a=sendrecv",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=mid:0",
        "a=msid:b1cb6831 6c0e6428",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=rtcp-mux",
        "a=ssrc:1567798137 cname:bd85f00e",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=candidate:f957a233 1 udp 2130706431 192.0.2.2 36353 typ host",
        "a=candidate:d0bcf3d9 1 udp 2130706431 fd00::2 39341 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:EbOo",
        "a=ice-pwd:etB5e8mqeBR4kTe2Affto5",
        "a=fingerprint:sha-256 CA:36:37",
        "a=fingerprint:sha-384 11:A4:D0",
        "a=setup:actpass",
        "",
    ]
)

#: The live service's answer-side shape: what a SIP-friendly client sends back.
SIP_ANSWER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE ",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuv",
        "m=audio 9 RTP/SAVP 0 8 101",
        "c=IN IP4 0.0.0.0",
        "a=rtpmap:101 telephone-event/8000",
        "a=setup:active",
        "a=rtcp-mux",
        "a=fingerprint:SHA-256 11:22:33",
        "a=candidate:1 1 UDP 2130706431 192.0.2.7 50000 typ host",
        "",
    ]
)


def test_the_sip_offer_is_the_live_shape() -> None:
    assert sip_offer(AIORTC_OFFER) == "\r\n".join(
        [
            "v=0",
            "o=- 4004621396 4004621396 IN IP4 192.0.2.2",
            "s=pjmedia",
            "b=AS:84",
            "t=0 0",
            "a=X-nat:0",
            "m=audio 36353 RTP/SAVP 0 8 101",
            "c=IN IP4 192.0.2.2",
            "b=TIAS:64000",
            "a=rtcp:36354 IN IP4 192.0.2.2",
            "a=sendrecv",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=ice-ufrag:EbOo",
            "a=ice-pwd:etB5e8mqeBR4kTe2Affto5",
            "a=candidate:f957a233 1 UDP 2130706431 192.0.2.2 36353 typ host",
            "a=rtcp-mux",
            "a=setup:actpass",
            "a=fingerprint:SHA-256 CA:36:37",
            "",
        ]
    )


def test_the_sip_offer_parses_in_aiortc() -> None:
    (media,) = SessionDescription.parse(sip_offer(AIORTC_OFFER)).media

    assert media.profile == "RTP/SAVP"
    assert [codec.mimeType for codec in media.rtp.codecs] == [
        "audio/PCMU",
        "audio/PCMA",
        "audio/telephone-event",
    ]
    assert not media.rtp.muxId
    assert media.rtcp_mux


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda sdp: sdp.replace("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", ""), "PCMU"),
        (lambda sdp: sdp.replace("a=ice-pwd:etB5e8mqeBR4kTe2Affto5\r\n", ""), "ICE credentials"),
        (lambda sdp: sdp.replace("sha-256", "sha-1"), "SHA-256 fingerprint"),
        (lambda sdp: sdp.replace("a=candidate:", "a=x-candidate:"), "no ICE candidate"),
        (lambda sdp: sdp + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "one audio section"),
    ],
)
def test_an_offer_it_cannot_rewrite_is_refused(change: object, problem: str) -> None:
    assert callable(change)
    with pytest.raises(ValueError, match=problem):
        sip_offer(change(AIORTC_OFFER))


def test_ipv6_candidates_are_kept_when_there_is_no_ipv4_one() -> None:
    only_v6 = "\r\n".join(
        line for line in AIORTC_OFFER.split("\r\n") if "192.0.2.2 36353" not in line
    )

    offer = sip_offer(only_v6)

    assert "c=IN IP6 fd00::2" in offer
    assert "m=audio 39341 RTP/SAVP 0 8 101" in offer


def test_a_sip_answer_is_made_acceptable_to_aiortc() -> None:
    answer = answer_for_aiortc(SIP_ANSWER, AIORTC_OFFER)

    assert "a=group" not in answer
    (media,) = SessionDescription.parse(answer).media
    assert media.rtp.muxId == "0"
    assert [(codec.payloadType, codec.mimeType) for codec in media.rtp.codecs] == [
        (101, "audio/telephone-event"),
        (0, "audio/PCMU"),
        (8, "audio/PCMA"),
    ]
    assert media.ice is not None
    assert media.ice.usernameFragment == "abcd"
    assert media.dtls is not None
    assert media.dtls.role == "client"


def test_an_answers_own_mid_is_replaced_by_the_offers() -> None:
    answer = SIP_ANSWER.replace("c=IN IP4 0.0.0.0", "c=IN IP4 0.0.0.0\r\na=mid:audio")

    (media,) = SessionDescription.parse(answer_for_aiortc(answer, AIORTC_OFFER)).media

    assert media.rtp.muxId == "0"


@pytest.mark.parametrize(
    ("removed", "problem"),
    [
        ("a=fingerprint:SHA-256 11:22:33\r\n", "no a=fingerprint"),
        ("a=setup:active\r\n", "no a=setup"),
        ("a=rtcp-mux\r\n", "no a=rtcp-mux"),
        ("a=ice-pwd:abcdefghijklmnopqrstuv\r\n", "no ICE credentials"),
    ],
)
def test_an_answer_aiortc_cannot_use_is_refused_with_the_reason(removed: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        answer_for_aiortc(SIP_ANSWER.replace(removed, ""), AIORTC_OFFER)


def test_an_answer_must_answer_every_section() -> None:
    with pytest.raises(ValueError, match="no media section"):
        answer_for_aiortc("v=0\r\ns=-\r\n", AIORTC_OFFER)
    with pytest.raises(ValueError, match="2 media sections for the offer's 1"):
        answer_for_aiortc(SIP_ANSWER + SIP_ANSWER[SIP_ANSWER.index("m=") :], AIORTC_OFFER)
    with pytest.raises(ValueError, match="a=setup:actpass"):
        answer_for_aiortc(SIP_ANSWER.replace("setup:active", "setup:actpass"), AIORTC_OFFER)


def test_the_bad_offer_does_not_parse() -> None:
    offer = bad_offer()

    assert offer.startswith("v=0\r\n")
    with pytest.raises(ValueError, match="invalid literal for int"):
        SessionDescription.parse(offer)


def test_candidates_can_be_redirected() -> None:
    offer = redirect_candidates(sip_offer(AIORTC_OFFER), "192.0.2.2", 40000)

    assert candidate_hosts(offer) == ["192.0.2.2"]
    assert "a=candidate:1 1 UDP 2130706431 192.0.2.2 40000 typ host" in offer
    assert "m=audio 40000 RTP/SAVP 0 8 101" in offer
    assert "a=rtcp:40000 IN IP4 192.0.2.2" in offer
    assert "a=fingerprint:SHA-256 CA:36:37" in offer


def test_the_next_version_of_an_offer() -> None:
    again = next_version(AIORTC_OFFER)

    assert again.split("\r\n")[1] == "o=- 4004621396 4004621397 IN IP4 0.0.0.0"
    assert again.split("\r\n")[2:] == AIORTC_OFFER.split("\r\n")[2:]
