"""SDP text surgery: aiortc's offer in the live service's SIP shape, and back.

The live service's offer comes from a SIP media stack (pjmedia; see
PROTOCOL.md section 7 and ``voice-live.jsonl``): profile ``RTP/SAVP``, G.711
and ``telephone-event`` only, no BUNDLE group, no ``a=mid``, ``a=msid`` or
``a=ssrc``, no ``a=end-of-candidates``, pjmedia's session lines. aiortc
cannot produce that, so ``sip_offer`` rewrites the offer aiortc made; the
DTLS-SRTP and ICE parameters, the codecs and the candidates are aiortc's own,
so its peer still connects to whoever answers.

aiortc, as the offerer, then refuses the answer to the rewritten offer unless
each answer section carries the ``a=mid`` of the offer section it answers
(the rewritten offer had none, so an answer has none, or one of its own):
``answer_for_aiortc`` puts them back, drops BUNDLE groups, and names the
static G.711 payload types a SIP answer may list without ``a=rtpmap``.
It checks first what aiortc needs but would report obscurely (or not at all).

All functions are pure text in, text out.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "answer_for_aiortc",
    "bad_offer",
    "candidate_hosts",
    "next_version",
    "redirect_candidates",
    "sip_offer",
]

#: Static RTP payload types (RFC 3551) aiortc supports: an answer may list them
#: in its ``m=`` line without an ``a=rtpmap``, but aiortc only reads ``a=rtpmap``.
_STATIC_PAYLOADS: Final = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000"}
#: The SIP-style offer's codecs, in the live offer's order.
_G711: Final = {"PCMU/8000": 0, "PCMA/8000": 8}
_TELEPHONE_EVENT: Final = 101


def _lines(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]


def _split(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The session's lines, and each media section's lines (its ``m=`` line first)."""
    session: list[str] = []
    sections: list[list[str]] = []
    for line in _lines(sdp):
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def _join(lines: list[str]) -> str:
    return "\r\n".join(lines) + "\r\n"


def _attribute(lines: list[str], name: str) -> str | None:
    """The value of the first ``a=name:value`` (or ``""`` for a flag ``a=name``)."""
    for line in lines:
        if line == f"a={name}":
            return ""
        if line.startswith(f"a={name}:"):
            return line[len(name) + 3 :]
    return None


def _values(lines: list[str], name: str) -> list[str]:
    return [line[len(name) + 3 :] for line in lines if line.startswith(f"a={name}:")]


def _media_line(section: list[str]) -> tuple[str, str, str, list[str]]:
    """``m=kind port profile formats...`` split up.

    Raises:
        ValueError: the line does not have those four parts.
    """
    parts = section[0][2:].split()
    if len(parts) < 4:
        raise ValueError(f"a malformed media line: {section[0]!r}")
    kind, port, profile, *formats = parts
    return kind, port, profile, formats


def _address(host: str) -> str:
    return f"IN IP6 {host}" if ":" in host else f"IN IP4 {host}"


def candidate_hosts(sdp: str) -> list[str]:
    """The addresses of every ``a=candidate`` of ``sdp``, in order."""
    hosts = []
    for line in _lines(sdp):
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) >= 6:
                hosts.append(parts[4])
    return hosts


def sip_offer(sdp: str) -> str:
    """aiortc's offer (one audio section, G.711 preferred) in the live service's SIP shape.

    Kept from aiortc's offer: the session id, the ICE credentials and
    candidates (IPv4 ones when there are any, as pjmedia's ``IN IP4``), the
    SHA-256 fingerprint, ``a=setup:actpass``, ``a=rtcp-mux``, the direction and
    the G.711 codecs. Added as live: ``s=pjmedia``, ``b=AS``, ``a=X-nat``,
    ``b=TIAS``, ``a=rtcp`` (the next port, pjmedia's fallback should RTCP not
    be multiplexed) and ``telephone-event`` (101). Written as live:
    ``RTP/SAVP``, ``UDP`` and ``SHA-256`` in capitals. Left out: BUNDLE,
    ``msid-semantic``, ``a=mid``, ``a=msid``, ``a=ssrc``, ``a=extmap``,
    ``a=end-of-candidates`` and the other fingerprints.

    Raises:
        ValueError: the offer is not a single audio section with PCMU or
            PCMA, ICE credentials, candidates and a SHA-256 fingerprint.
    """
    session, sections = _split(sdp)
    if len(sections) != 1 or not sections[0][0].startswith("m=audio "):
        raise ValueError("a SIP-style offer is made from an offer of one audio section")
    media = sections[0]
    _, _, _, formats = _media_line(media)
    codecs = {}
    for rtpmap in _values(media, "rtpmap"):
        payload, _, name = rtpmap.partition(" ")
        if name in _G711 and payload in formats:
            codecs[int(payload)] = name
    if not codecs:
        raise ValueError("the offer has neither PCMU nor PCMA")
    ufrag = _attribute(media, "ice-ufrag") or _attribute(session, "ice-ufrag")
    password = _attribute(media, "ice-pwd") or _attribute(session, "ice-pwd")
    if not ufrag or not password:
        raise ValueError("the offer has no ICE credentials")
    fingerprint = next(
        (
            value.split(maxsplit=1)[1]
            for value in _values(media, "fingerprint") + _values(session, "fingerprint")
            if value.lower().startswith("sha-256 ")
        ),
        None,
    )
    if fingerprint is None:
        raise ValueError("the offer has no SHA-256 fingerprint")
    candidates = [line for line in media if line.startswith("a=candidate:")]
    ipv4 = [line for line in candidates if ":" not in line.split()[4]]
    candidates = ipv4 or candidates
    if not candidates:
        raise ValueError("the offer has no ICE candidate")
    first = candidates[0].split()
    host, port = first[4], int(first[5])
    origin = _attribute_line(session, "o=") or "o=- 0 0 IN IP4 0.0.0.0"
    user, session_id, version, *_ = origin[2:].split()
    direction = next(
        (line[2:] for line in media if line[2:] in ("sendrecv", "sendonly", "recvonly")),
        "sendrecv",
    )
    payloads = sorted(codecs, key=list(_G711.values()).index)
    lines = [
        "v=0",
        f"o={user} {session_id} {version} {_address(host)}",
        "s=pjmedia",
        "b=AS:84",
        "t=0 0",
        "a=X-nat:0",
        f"m=audio {port} RTP/SAVP {' '.join(map(str, [*payloads, _TELEPHONE_EVENT]))}",
        f"c={_address(host)}",
        "b=TIAS:64000",
        f"a=rtcp:{port + 1} {_address(host)}",
        f"a={direction}",
        *(f"a=rtpmap:{payload} {codecs[payload]}" for payload in payloads),
        f"a=rtpmap:{_TELEPHONE_EVENT} telephone-event/8000",
        f"a=fmtp:{_TELEPHONE_EVENT} 0-16",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{password}",
    ]
    for candidate in candidates:
        parts = candidate.split()
        parts[2] = parts[2].upper()
        lines.append(" ".join(parts))
    lines += ["a=rtcp-mux", "a=setup:actpass", f"a=fingerprint:SHA-256 {fingerprint}"]
    return _join(lines)


def _attribute_line(lines: list[str], prefix: str) -> str | None:
    return next((line for line in lines if line.startswith(prefix)), None)


def answer_for_aiortc(answer: str, offer: str) -> str:
    """The client's ``answer`` as aiortc, the offerer of ``offer``, will take it.

    Args:
        answer: the SDP answer as the client sent it.
        offer: the offer aiortc made and set as its local description (not
            the rewritten one that was sent: its ``a=mid`` values are needed).

    Returns:
        The answer with each section's ``a=mid`` set to the offer section's at
        the same position, no ``a=group`` line, and an ``a=rtpmap`` for each
        static payload type (0, 8, 9) listed without one.

    Raises:
        ValueError: the answer lacks what aiortc needs, named in the message:
            as many media sections as the offer, ICE credentials, a DTLS
            fingerprint and an ``a=setup`` of ``active`` or ``passive``,
            ``a=rtcp-mux`` (aiortc cannot send RTCP apart).
    """
    session, sections = _split(answer)
    _, offered = _split(offer)
    if not sections:
        raise ValueError("the answer has no media section (no m= line)")
    if len(sections) != len(offered):
        raise ValueError(
            f"the answer has {len(sections)} media sections for the offer's {len(offered)}"
        )
    lines = [line for line in session if not line.startswith("a=group:")]
    for index, (section, offered_section) in enumerate(zip(sections, offered, strict=True)):
        _check(session, section, index)
        lines.append(section[0])
        mid = _attribute(offered_section, "mid")
        if mid:
            lines.append(f"a=mid:{mid}")
        lines += [line for line in section[1:] if not line.startswith("a=mid:")]
        mapped = {value.split()[0] for value in _values(section, "rtpmap") if value.split()}
        for payload in _media_line(section)[3]:
            if payload not in mapped and payload.isdigit() and int(payload) in _STATIC_PAYLOADS:
                lines.append(f"a=rtpmap:{payload} {_STATIC_PAYLOADS[int(payload)]}")
    return _join(lines)


def _check(session: list[str], section: list[str], index: int) -> None:
    where = f"the answer's media section {index}" if index else "the answer"

    def attribute(name: str) -> str | None:
        value = _attribute(section, name)
        return value if value is not None else _attribute(session, name)

    _media_line(section)
    if not attribute("ice-ufrag") or not attribute("ice-pwd"):
        raise ValueError(f"{where} has no ICE credentials (a=ice-ufrag and a=ice-pwd)")
    if not attribute("fingerprint"):
        raise ValueError(f"{where} has no a=fingerprint: DTLS-SRTP cannot be set up")
    setup = attribute("setup")
    if setup not in ("active", "passive"):
        shown = "no a=setup" if setup is None else f"a=setup:{setup}"
        raise ValueError(f"{where} has {shown}; an answer's must be active or passive")
    if _attribute(section, "rtcp-mux") is None:
        raise ValueError(f"{where} has no a=rtcp-mux; this emulator (aiortc) needs RTCP muxed")


def bad_offer() -> str:
    """An offer no SDP parser takes (aiortc raises ``ValueError``).

    It starts like an SDP, but its ``m=`` line has codec names where the
    payload type numbers go.
    """
    return _join(
        [
            "v=0",
            "o=- 0 0 IN IP4 0.0.0.0",
            "s=pjmedia",
            "t=0 0",
            "m=audio 9 RTP/SAVP PCMU PCMA",
            "a=this is not an SDP offer",
        ]
    )


def redirect_candidates(sdp: str, host: str, port: int) -> str:
    """``sdp`` with its candidates replaced by one host candidate at ``host:port``.

    The ``m=`` port, the ``c=`` lines and ``a=rtcp`` follow, so the offer stays
    consistent; nothing else changes (credentials, fingerprint, codecs).
    """
    lines = []
    placed = False
    for line in _lines(sdp):
        if line.startswith("a=candidate:"):
            if not placed:
                lines.append(f"a=candidate:1 1 UDP 2130706431 {host} {port} typ host")
                placed = True
            continue
        if line.startswith("m="):
            kind, _, profile, formats = _media_line([line])
            line = f"m={kind} {port} {profile} {' '.join(formats)}"
        elif line.startswith("c="):
            line = f"c={_address(host)}"
        elif line.startswith("a=rtcp:"):
            line = f"a=rtcp:{port} {_address(host)}"
        lines.append(line)
    return _join(lines)


def next_version(sdp: str) -> str:
    """``sdp`` with the session version of its ``o=`` line one higher (a new offer)."""

    def bump(match: re.Match[str]) -> str:
        return f"{match.group(1)}{int(match.group(2)) + 1}"

    return _join([re.sub(r"^(o=\S+ \S+ )(\d+)", bump, line) for line in _lines(sdp)])
