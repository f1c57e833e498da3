"""``AiortcSession`` beyond the happy call: refusals, caps, timeouts, closing, trio."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator

import pytest
from blackbox_media_aiortc import (
    AiortcSession,
    AsyncioRequired,
    EchoPolicy,
    MediaConnectTimeout,
    MediaError,
    OfferError,
)
from blackbox_protocol import MediaState

from tests.blackbox_media_aiortc._audio import RecordingSink, ToneSource
from tests.blackbox_media_aiortc._peer import OfferingPeer
from tests.blackbox_media_aiortc.test_call import states_of, until_state

pytestmark = pytest.mark.anyio


def without(sdp: str, *prefixes: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefixes))


async def test_an_offer_without_rtcp_mux_or_setup_still_connects() -> None:
    peer = OfferingPeer("sip")
    session = AiortcSession()
    try:
        offer = without(await peer.offer(), "a=rtcp-mux", "a=setup")
        answer = await session.answer(offer)
        await peer.accept(answer)
        await until_state(session, MediaState.CONNECTED)
    finally:
        await session.close()
        await peer.close()
    assert "a=setup:active" in answer


async def test_an_offer_without_fingerprint_is_refused() -> None:
    peer = OfferingPeer("browser")
    session = AiortcSession()
    try:
        with pytest.raises(OfferError, match="no DTLS fingerprint"):
            await session.answer(without(await peer.offer(), "a=fingerprint"))
        assert states_of(session) is MediaState.FAILED
        assert isinstance(session.failure, OfferError)
    finally:
        await session.close()
        await peer.close()
    assert session.state is MediaState.CLOSED


@pytest.mark.parametrize(
    ("offer", "reason"),
    [
        ("", "not SDP"),
        ("hello, world", "line 1 is not an SDP line"),
        ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", "no media section"),
        ("v=0\r\nm=video 9 RTP/AVP 96\r\n", "offers no audio"),
        ("v=0\r\nm=audio nine RTP/AVP 0\r\n", "media line is malformed"),
    ],
)
async def test_an_unparseable_offer_is_refused_with_a_reason(offer: str, reason: str) -> None:
    async with AiortcSession() as session:
        with pytest.raises(OfferError, match=reason):
            await session.answer(offer)
        assert session.state is MediaState.FAILED


async def test_an_offer_aiortc_cannot_parse_is_refused_with_its_reason() -> None:
    peer = OfferingPeer("browser")
    offer = (await peer.offer()).replace("c=IN IP4", "c=IN XX4")
    await peer.close()
    async with AiortcSession() as session:
        with pytest.raises(OfferError, match="aiortc cannot parse it"):
            await session.answer(offer)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A STUN server on loopback that never answers: a UDP socket nobody reads."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"stun:127.0.0.1:{sock.getsockname()[1]}"


async def test_gathering_is_capped_and_keeps_the_host_candidates(blackhole: str) -> None:
    peer = OfferingPeer("sip")
    session = AiortcSession(ice_servers=[blackhole], gather_timeout=0.5)
    loop = asyncio.get_running_loop()
    try:
        offer = await peer.offer()
        started = loop.time()
        answer = await session.answer(offer)
        took = loop.time() - started
        await peer.accept(answer)
        await until_state(session, MediaState.CONNECTED)
    finally:
        await session.close()
        await peer.close()
    assert 0.5 <= took < 0.5 + 0.4  # without the cap, aioice waits 5 s for the server
    assert re.search(r"^a=candidate:\S+ 1 udp \d+ \S+ \d+ typ host", answer, re.MULTILINE)


async def test_not_connected_in_time_becomes_failed() -> None:
    peer = OfferingPeer("browser")
    session = AiortcSession(connect_timeout=0.3)
    try:
        await session.answer(await peer.offer())  # the peer never gets the answer
        await asyncio.wait_for(until_state(session, MediaState.FAILED), 2)
        assert isinstance(session.failure, MediaConnectTimeout)
    finally:
        await session.close()
        await peer.close()
    assert session.state is MediaState.CLOSED


async def test_close_is_idempotent_and_safe_at_any_time() -> None:
    sink = RecordingSink()
    source = ToneSource(440)
    unused = AiortcSession(source, sink)
    await unused.close()
    await unused.close()
    assert unused.state is MediaState.CLOSED
    assert sink.closes == 1
    assert source.closed
    with pytest.raises(MediaError, match="closed"):
        await unused.answer("v=0\r\n")

    peer = OfferingPeer("browser")
    session = AiortcSession(sink=RecordingSink())
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await asyncio.gather(session.close(), session.close())
        await session.close()
    finally:
        await peer.close()
    assert session.state is MediaState.CLOSED
    assert [s async for s in session.state_changes()] == [MediaState.CLOSED]
    assert [f async for f in session.received_audio()] == []


async def test_a_second_offer_is_refused() -> None:
    peer = OfferingPeer("browser")
    async with AiortcSession() as session:
        offer = await peer.offer()
        await session.answer(offer)
        with pytest.raises(MediaError, match="answered an offer already"):
            await session.answer(offer)
        assert session.state is MediaState.CONNECTING
    await peer.close()


async def test_the_peer_closing_ends_the_session_as_closed() -> None:
    peer = OfferingPeer("browser")
    sink = RecordingSink()
    session = AiortcSession(sink=sink)
    try:
        await peer.accept(await session.answer(await peer.offer()))
        await until_state(session, MediaState.CONNECTED)
        await peer.close()
        await until_state(session, MediaState.CLOSED)
        assert session.failure is None
    finally:
        await session.close()
    assert sink.closes == 1


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_it_fails_at_once() -> None:
    with pytest.raises(AsyncioRequired, match="anyio's asyncio backend"):
        AiortcSession()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_session_made_outside_any_loop_refuses_trio_at_answer(
    made_outside: AiortcSession,
) -> None:
    with pytest.raises(AsyncioRequired, match="this is trio"):
        await made_outside.answer("v=0\r\n")
    with pytest.raises(AsyncioRequired):
        await anext(made_outside.state_changes())
    await made_outside.close()  # what the driver does next: must not hang or raise
    assert made_outside.state is MediaState.CLOSED


@pytest.fixture
def made_outside() -> AiortcSession:
    return AiortcSession(sink=RecordingSink())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_rate": 44000 + 1}, "sample_rate"),
        ({"sample_rate": 4000}, "sample_rate"),
        ({"gather_timeout": 0}, "positive"),
        ({"connect_timeout": -1}, "positive"),
        ({"ice_servers": "stun:example.org"}, "sequence"),
        ({"ice_servers": ["http://example.org"]}, "not a STUN"),
        ({"echo_policy": "half-duplex"}, "EchoPolicy"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AiortcSession(**kwargs)  # type: ignore[arg-type]


def test_the_echo_policy_is_kept() -> None:
    assert AiortcSession(echo_policy=EchoPolicy.HALF_DUPLEX).echo_policy is EchoPolicy.HALF_DUPLEX


async def test_closing_while_answering_ends_the_answer_with_a_media_error(blackhole: str) -> None:
    peer = OfferingPeer("browser")
    session = AiortcSession(ice_servers=[blackhole], gather_timeout=2)
    answering = asyncio.ensure_future(session.answer(await peer.offer()))
    await asyncio.sleep(0.2)  # gathering: waiting for the silent STUN server
    await asyncio.wait_for(session.close(), 3)
    with pytest.raises(MediaError, match="closed while answering"):
        await asyncio.wait_for(answering, 3)
    await peer.close()
    assert session.state is MediaState.CLOSED
    assert session.failure is None


async def test_cancelling_an_answer_then_closing_leaves_nothing_running(blackhole: str) -> None:
    # aioice's STUN retries outlive an interrupted gathering and then write to
    # closed sockets; the anyio runner turns that callback error into a failure.
    peer = OfferingPeer("browser")
    session = AiortcSession(ice_servers=[blackhole], gather_timeout=1)
    answering = asyncio.ensure_future(session.answer(await peer.offer()))
    await asyncio.sleep(0.2)
    answering.cancel()
    with pytest.raises(asyncio.CancelledError):
        await answering
    await asyncio.wait_for(session.close(), 3)
    await peer.close()
    await asyncio.sleep(1.5)  # past every retry aioice had scheduled
    assert session.state is MediaState.CLOSED
