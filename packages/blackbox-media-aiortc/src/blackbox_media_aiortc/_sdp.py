"""SDP text munging between a SIP-style offerer and aiortc.

Two directions, both plain text to text:

- ``normalize_offer``: the offer as the service sent it, made into one aiortc
  accepts (aiortc rejects an audio section without ``a=rtcp-mux`` or
  ``a=setup``, trips over static payload types without ``a=rtpmap``, a
  direction given only at session level, and sections it cannot use), or an
  ``OfferError`` saying why no answer is possible.
- ``rewrite_answer``: aiortc's answer made into one an RFC 3264 offerer
  accepts: the offer's transport profile on the ``m=`` line (aiortc always
  writes ``UDP/TLS/RTP/SAVPF``), only payload types the offer listed, no BUNDLE
  group the offer did not ask for, and every section the offer had, the
  unused ones rejected with port 0.

aiortc sees only the normalized offer and its own answer; the remote side
sees only the rewritten answer.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from blackbox_media_aiortc.errors import OfferError

__all__ = [
    "FINGERPRINT_ALGORITHMS",
    "STATIC_AUDIO_PAYLOADS",
    "MediaSection",
    "NormalizedOffer",
    "normalize_offer",
    "rewrite_answer",
]

#: RTP/AVP static audio payload types (RFC 3551 table 4): a SIP stack may list
#: these on the ``m=`` line without an ``a=rtpmap``, and aiortc only knows
#: codecs that have one.
STATIC_AUDIO_PAYLOADS: Final[Mapping[int, str]] = {
    0: "PCMU/8000",
    3: "GSM/8000",
    4: "G723/8000",
    5: "DVI4/8000",
    6: "DVI4/16000",
    7: "LPC/8000",
    8: "PCMA/8000",
    9: "G722/8000",
    10: "L16/44100/2",
    11: "L16/44100",
    12: "QCELP/8000",
    13: "CN/8000",
    14: "MPA/90000",
    15: "G728/8000",
    16: "DVI4/11025",
    17: "DVI4/22050",
    18: "G729/8000",
}

#: The fingerprint hashes aiortc 1.16 verifies (``X509_DIGEST_ALGORITHMS``): a
#: certificate known only by another hash (``sha-1``) fails the DTLS handshake.
FINGERPRINT_ALGORITHMS: Final = frozenset({"sha-256", "sha-384", "sha-512"})

_DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
_SETUP_VALUES: Final = ("actpass", "active", "passive")
_LINE = re.compile(r"[a-z]=")
_MEDIA_LINE = re.compile(r"m=(\S+) (\d+)(?:/\d+)? (\S+)(?: (.*))?")
_FORBIDDEN_PAYLOAD_TYPES: Final = range(72, 77)  # RTCP packet types (RFC 5761)


@dataclass(frozen=True, slots=True)
class MediaSection:
    """One ``m=`` section of the offer, as much as the answer must echo."""

    kind: str
    port: int
    profile: str
    formats: str
    mid: str | None


@dataclass(frozen=True, slots=True)
class NormalizedOffer:
    """An offer made acceptable to aiortc, and what its answer must look like."""

    #: The text to give aiortc: the session part and the one audio section.
    sdp: str
    #: The audio section's transport profile, as offered (``RTP/SAVP``).
    profile: str
    #: The payload types the audio section offered, in order.
    payload_types: tuple[int, ...]
    #: Whether the offer bundles the audio section (so the answer may too).
    bundle: bool
    #: Every section of the offer, in order; the answer has one per section.
    sections: tuple[MediaSection, ...]
    #: Which of ``sections`` is the audio aiortc answers.
    audio_index: int
    #: What was changed to satisfy aiortc, one phrase each (for the log).
    changes: tuple[str, ...]


def normalize_offer(offer: str) -> NormalizedOffer:
    """Make an offer acceptable to aiortc, or explain why it cannot be answered.

    Keeps the first audio section with a non-zero port; every other section is
    left out of what aiortc sees (it is rejected in the answer). The result is
    parsed with aiortc's own parser, so whatever it would choke on surfaces
    here as an ``OfferError``.

    Args:
        offer: the offer SDP as received.

    Returns:
        The text for aiortc and the facts ``rewrite_answer`` needs.

    Raises:
        OfferError: not SDP; no audio; no DTLS fingerprint aiortc can verify
            (DTLS-SRTP is required: without one aiortc never connects); no ICE
            credentials; an ``a=setup`` that forbids a connection.
    """
    session, media = _split(offer)
    if not session or session[0] != "v=0":
        raise OfferError("it is not SDP (it does not start with v=0)")
    if not media:
        raise OfferError("it has no media section (m=)")
    sections = tuple(_section(lines) for lines in media)
    audio_index = next(
        (i for i, s in enumerate(sections) if s.kind == "audio" and s.port != 0), None
    )
    if audio_index is None:
        raise OfferError("it offers no audio")
    audio = media[audio_index]
    section = sections[audio_index]
    changes: list[str] = []

    _check_security(session, audio)
    audio = _with_setup(session, audio, changes)
    if "rtcp-mux" not in _names(audio):
        audio.append("a=rtcp-mux")
        changes.append("added a=rtcp-mux (aiortc multiplexes RTCP)")
    if not any(name in _DIRECTIONS for name in _names(audio)):
        direction = next((n for n in _names(session) if n in _DIRECTIONS), "sendrecv")
        audio.append(f"a={direction}")
        changes.append(f"added a={direction} to the audio section")
    payload_types = _payload_types(section)
    audio = _with_codec_lines(audio, payload_types, changes)
    audio = _without_malformed(audio, changes)
    audio[0] = f"m=audio {section.port} {section.profile.upper()} {section.formats}"

    bundle = False
    kept_session: list[str] = []
    for line in session:
        name, value = _attribute(line)
        if name == "group" and value is not None and value.split()[:1] == ["BUNDLE"]:
            if section.mid is not None and section.mid in value.split()[1:]:
                bundle = True
                kept_session.append(f"a=group:BUNDLE {section.mid}")
            continue
        kept_session.append(line)
    if len(sections) > 1:
        changes.append(f"left {len(sections) - 1} non-audio or extra section(s) out")

    text = "\r\n".join([*kept_session, *audio]) + "\r\n"
    _check_aiortc_parses(text)
    return NormalizedOffer(
        sdp=text,
        profile=section.profile,
        payload_types=payload_types,
        bundle=bundle,
        sections=sections,
        audio_index=audio_index,
        changes=tuple(changes),
    )


def rewrite_answer(answer: str, offer: NormalizedOffer) -> str:
    """Make aiortc's answer one that the offerer's media stack accepts (RFC 3264).

    Args:
        answer: aiortc's local description, after gathering (one audio section).
        offer: what ``normalize_offer`` made of the offer.

    Returns:
        The answer to send: the offer's profile, only offered payload types,
        no BUNDLE group unless offered, and one section per offered section.

    Raises:
        OfferError: no payload type of aiortc's answer was in the offer.
    """
    session, media = _split(answer)
    if len(media) != 1:
        raise ValueError(f"expected aiortc's answer to have one section, not {len(media)}")
    audio = media[0]
    match = _MEDIA_LINE.fullmatch(audio[0])
    if match is None:
        raise ValueError(f"aiortc wrote an m= line that is not one: {audio[0]!r}")
    offered = set(offer.payload_types)
    kept = [pt for pt in (match.group(4) or "").split() if pt.isdigit() and int(pt) in offered]
    if not kept:
        raise OfferError("no codec of the offer can be used (aiortc has PCMU, PCMA, G722, opus)")
    dropped = {pt for pt in (match.group(4) or "").split() if pt not in kept}
    audio = [
        f"m={match.group(1)} {match.group(2)} {offer.profile} {' '.join(kept)}",
        *(line for line in audio[1:] if _codec_of(line) not in dropped),
    ]
    if not offer.bundle:
        session = [line for line in session if not line.startswith("a=group:BUNDLE")]

    out = list(session)
    for index, section in enumerate(offer.sections):
        out += audio if index == offer.audio_index else _rejected(section)
    return "\r\n".join(out) + "\r\n"


def _split(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The session lines and each media section's lines (``m=`` first), blank lines dropped."""
    session: list[str] = []
    media: list[list[str]] = []
    for number, raw in enumerate(sdp.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not _LINE.match(line):
            raise OfferError(f"line {number} is not an SDP line: {line[:40]!r}")
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return session, media


def _section(lines: Sequence[str]) -> MediaSection:
    match = _MEDIA_LINE.fullmatch(lines[0])
    if match is None:
        raise OfferError(f"its media line is malformed: {lines[0][:60]!r}")
    mid = next((value for name, value in map(_attribute, lines) if name == "mid"), None)
    return MediaSection(
        kind=match.group(1),
        port=int(match.group(2)),
        profile=match.group(3),
        formats=match.group(4) or "",
        mid=mid,
    )


def _attribute(line: str) -> tuple[str | None, str | None]:
    """``a=name:value`` as ``(name, value)``; a flag has value ``None``; not ``a=``: no name."""
    if not line.startswith("a="):
        return None, None
    name, colon, value = line[2:].partition(":")
    return name, (value.strip() if colon else None)


def _names(lines: Sequence[str]) -> list[str | None]:
    return [_attribute(line)[0] for line in lines]


def _values(lines: Sequence[str], wanted: str) -> list[str]:
    return [value for name, value in map(_attribute, lines) if name == wanted and value is not None]


def _check_security(session: Sequence[str], audio: Sequence[str]) -> None:
    """DTLS-SRTP and ICE, which aiortc cannot do without, each at either level."""
    fingerprints = _values(audio, "fingerprint") or _values(session, "fingerprint")
    if not fingerprints:
        sdes = " (SDES keys, a=crypto, are not supported)" if _values(audio, "crypto") else ""
        raise OfferError("it has no DTLS fingerprint (a=fingerprint): DTLS-SRTP is required" + sdes)
    algorithms = sorted({value.split()[0].lower() for value in fingerprints if value.split()})
    if not FINGERPRINT_ALGORITHMS.intersection(algorithms):
        raise OfferError(
            f"its DTLS fingerprints use {', '.join(algorithms) or 'no hash'}; "
            "aiortc verifies sha-256, sha-384 and sha-512 only"
        )
    for credential in ("ice-ufrag", "ice-pwd"):
        if not (_values(audio, credential) or _values(session, credential)):
            raise OfferError(f"it has no ICE credentials (a={credential}): ICE is required")


def _with_setup(session: Sequence[str], audio: list[str], changes: list[str]) -> list[str]:
    setup = _values(audio, "setup") or _values(session, "setup")
    if not setup:
        # RFC 5763 makes the offerer say actpass; an offer that says nothing is
        # read the way Chromium reads it, as actpass (we then take DTLS client).
        changes.append("added a=setup:actpass")
        return [*audio, "a=setup:actpass"]
    if setup[0] not in _SETUP_VALUES:
        raise OfferError(f"its a=setup:{setup[0]} allows no DTLS connection")
    return audio


def _payload_types(section: MediaSection) -> tuple[int, ...]:
    formats = section.formats.split()
    if not formats or not all(f.isdigit() and int(f) < 128 for f in formats):
        raise OfferError(f"its audio formats are not RTP payload types: {section.formats!r}")
    types = tuple(int(f) for f in formats)
    if any(pt in _FORBIDDEN_PAYLOAD_TYPES for pt in types):
        raise OfferError("its audio formats include payload types 72-76, reserved for RTCP")
    return types


def _with_codec_lines(
    audio: list[str], payload_types: Sequence[int], changes: list[str]
) -> list[str]:
    """Add the ``a=rtpmap`` static payload types imply; drop ``a=fmtp`` of unmapped ones."""
    mapped = {_codec_of(line) for line in audio if line.startswith("a=rtpmap:")}
    added = []
    for pt in payload_types:
        if str(pt) not in mapped and pt in STATIC_AUDIO_PAYLOADS:
            added.append(f"a=rtpmap:{pt} {STATIC_AUDIO_PAYLOADS[pt]}")
            mapped.add(str(pt))
    if added:
        changes.append("added a=rtpmap for static payload type(s) " + ", ".join(added))
    kept = [
        line for line in audio if not (line.startswith("a=fmtp:") and _codec_of(line) not in mapped)
    ]
    if len(kept) != len(audio):
        changes.append("dropped a=fmtp for payload types without a=rtpmap")
    return [*kept, *added]


def _without_malformed(audio: list[str], changes: list[str]) -> list[str]:
    """Drop or trim the attribute lines aiortc's parser raises on."""
    out: list[str] = []
    for line in audio:
        name, value = _attribute(line)
        if name == "candidate" and (value is None or len(value.split()) < 8):
            changes.append(f"dropped a malformed candidate: {line[:60]!r}")
            continue
        if name == "ssrc" and (value is None or ":" not in value or " " not in value):
            changes.append(f"dropped a malformed ssrc line: {line[:60]!r}")
            continue
        if name == "extmap" and value is not None and len(value.split()) > 2:
            line = "a=extmap:" + " ".join(value.split()[:2])
            changes.append("dropped extension attributes from a=extmap")
        if name == "extmap" and (value is None or len(value.split()) < 2):
            changes.append(f"dropped a malformed extmap line: {line[:60]!r}")
            continue
        out.append(line)
    return out


def _codec_of(line: str) -> str | None:
    """The payload type an ``a=rtpmap``, ``a=fmtp`` or ``a=rtcp-fb`` line is about."""
    name, value = _attribute(line)
    if name in ("rtpmap", "fmtp", "rtcp-fb") and value:
        return value.split()[0]
    return None


def _rejected(section: MediaSection) -> list[str]:
    """A section declined as RFC 3264 says: port 0, and the offer's formats echoed."""
    lines = [f"m={section.kind} 0 {section.profile} {section.formats}".rstrip()]
    lines.append("c=IN IP4 0.0.0.0")
    if section.mid is not None:
        lines.append(f"a=mid:{section.mid}")
    if section.kind in ("audio", "video"):
        lines.append("a=inactive")
    return lines


def _check_aiortc_parses(sdp: str) -> None:
    # Imported here: aiortc takes the best part of a second to import.
    from aiortc.sdp import SessionDescription

    try:
        SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises asserts, KeyErrors, ValueErrors...
        # A bare assert says nothing: name the check that failed instead.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = str(exc) or f"{where.name}: {where.line}"
        raise OfferError(f"aiortc cannot parse it ({type(exc).__name__}: {detail})") from exc
