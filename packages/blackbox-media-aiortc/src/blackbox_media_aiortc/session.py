"""``AiortcSession``: the ``AudioSession`` contract on aiortc."""

from __future__ import annotations

import asyncio  # noqa: TID251 -- aiortc is asyncio-only; this module is the glue to it
import functools
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final

from blackbox_protocol import AudioFrame, AudioSession, MediaError, MediaState

from blackbox_media_aiortc import _sdp
from blackbox_media_aiortc._cut import INTERRUPT_HANG, UtteranceCut
from blackbox_media_aiortc._feeds import FrameQueue, StateFeed
from blackbox_media_aiortc._loop import require_asyncio
from blackbox_media_aiortc.echo import EchoPolicy, HalfDuplexGate
from blackbox_media_aiortc.errors import (
    GatheringError,
    GatheringTimeout,
    MediaConnectTimeout,
    OfferError,
)
from blackbox_media_aiortc.sources import AudioSink, AudioSource

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection
    from aiortc.mediastreams import MediaStreamTrack
    from aiortc.rtcicetransport import RTCIceGatherer

    from blackbox_media_aiortc._track import SourceTrack
    from blackbox_media_aiortc.aec import EchoCanceller

__all__ = ["INTERRUPT_HANG", "RECEIVED_FRAMES_KEPT", "AiortcSession"]

logger = logging.getLogger("blackbox_media_aiortc")

#: How many received frames ``received_audio()`` keeps for a slow reader
#: (20 ms each: 10 s); older ones are dropped and counted.
RECEIVED_FRAMES_KEPT: Final = 500
#: The bound on closing the peer connection and stopping the session's tasks.
_CLOSE_TIMEOUT: Final = 5.0
#: Past the gathering cap, the time left for aioice to return what it has.
_GATHER_GRACE: Final = 0.5
_ICE_SERVER = re.compile(r"(stun|stuns|turn|turns):[^?:]+(:\d+)?(\?transport=(udp|tcp))?")
_STATES: Final = {
    "connecting": MediaState.CONNECTING,
    "connected": MediaState.CONNECTED,
}


class AiortcSession(AudioSession):
    """A voice call's media on aiortc: answers the offer, plays a source, feeds a sink.

    Tolerant of SIP-style offers (``RTP/SAVP``, G.711 only, no BUNDLE, no
    ``a=mid``): the offer is normalized for aiortc, and aiortc's answer is
    rewritten so the offerer's media stack accepts it (the offer's profile,
    only offered codecs). asyncio only: under trio every call raises
    ``AsyncioRequired`` at once.

    ``interrupt()`` cuts the agent off: it empties the sink's playback queue
    (if the sink has one: see ``AudioSink``) and gives the sink silence in
    place of the agent's audio until the agent has been quiet for
    ``INTERRUPT_HANG`` (0.8 s). ``mute()`` sends silence in place of the
    source until ``unmute()``.

    Args:
        source: the caller's audio; ``None`` sends silence.
        sink: gets the agent's audio, mono at ``sample_rate``; ``None``: only
            ``received_audio()`` has it.
        sample_rate: the rate of the frames given to the sink and
            ``received_audio()`` (a multiple of 50, so that 20 ms is whole).
        ice_servers: STUN/TURN URLs (``stun:host:port``); none by default, as
            the service needs none. An unreachable one costs ``gather_timeout``.
        gather_timeout: the cap on ICE gathering, in seconds; when it passes,
            the candidates found so far are used.
        connect_timeout: seconds from the answer to a connected audio path;
            past it the state becomes ``FAILED``.
        echo_policy: ``EchoPolicy.FULL_DUPLEX`` (alias ``NONE``) sends the
            source as it is (headphones); ``HALF_DUPLEX`` sends silence while
            the agent is heard (loudspeakers, no barge-in);
            ``ECHO_CANCELLATION`` takes the agent's echo out of the source
            (loudspeakers with barge-in; the ``aec`` extra, and a
            ``sample_rate`` of 8000, 16000, 32000 or 48000).

    Raises:
        ValueError: an argument out of range, or an ICE server URL that is not one.
        AsyncioRequired: made under trio.
        EchoCancellationUnavailable: ``ECHO_CANCELLATION`` without the ``aec``
            extra (the message says how to install it).
    """

    def __init__(
        self,
        source: AudioSource | None = None,
        sink: AudioSink | None = None,
        *,
        sample_rate: int = 48000,
        ice_servers: Sequence[str] = (),
        gather_timeout: float = 2.5,
        connect_timeout: float = 10.0,
        echo_policy: EchoPolicy = EchoPolicy.FULL_DUPLEX,
    ) -> None:
        require_asyncio(outside_ok=True)
        if not (8000 <= sample_rate <= 192000 and sample_rate % 50 == 0):
            raise ValueError(
                f"sample_rate must be 8000 to 192000 and a multiple of 50, not {sample_rate}"
            )
        if not gather_timeout > 0 or not connect_timeout > 0:
            raise ValueError("gather_timeout and connect_timeout must be positive")
        if isinstance(ice_servers, str):
            raise ValueError("ice_servers is a sequence of URLs, not one string")
        for url in ice_servers:
            if not _ICE_SERVER.fullmatch(url):
                raise ValueError(f"not a STUN or TURN URL: {url!r}")
        if not isinstance(echo_policy, EchoPolicy):
            raise ValueError(f"echo_policy must be an EchoPolicy, not {echo_policy!r}")
        self.sample_rate = sample_rate
        """The rate of the frames the sink and ``received_audio()`` get."""
        self.echo_policy = echo_policy
        """What is done against echo (see ``EchoPolicy``)."""
        self._failure: MediaError | None = None
        """Why the state became ``FAILED`` (``MediaConnectTimeout``, ...), else ``None``."""
        self.gathering_time: float | None = None
        """How long ICE gathering took during ``answer()``, in seconds."""
        self._source = source
        self._sink = sink
        self._ice_servers = tuple(ice_servers)
        self._gather_timeout = gather_timeout
        self._connect_timeout = connect_timeout
        self._gate = HalfDuplexGate() if echo_policy is EchoPolicy.HALF_DUPLEX else None
        self._canceller: EchoCanceller | None = None
        if echo_policy is EchoPolicy.ECHO_CANCELLATION:
            from blackbox_media_aiortc.aec import EchoCanceller

            self._canceller = EchoCanceller(sample_rate)
        self._cut = UtteranceCut()
        self._muted = False
        self._states = StateFeed()
        self._received = FrameQueue(RECEIVED_FRAMES_KEPT)
        self._pc: RTCPeerConnection | None = None
        self._track: SourceTrack | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._gathering: asyncio.Future[list[None]] | None = None
        self._answered = False
        self._peer_closing = False
        self._closing = False
        self._closed = asyncio.Event()
        self._sink_failed = False

    def __repr__(self) -> str:
        return f"<AiortcSession {self.state.value}>"

    @property
    def failure(self) -> MediaError | None:
        """Why the media failed, once ``state`` is ``FAILED``."""
        return self._failure

    @property
    def state(self) -> MediaState:
        """The media's current state."""
        return self._states.current

    @property
    def dropped_frames(self) -> int:
        """Received frames dropped because nobody read ``received_audio()`` in time."""
        return self._received.dropped

    @property
    def muted_frames(self) -> int:
        """20 ms packets the half-duplex gate replaced with silence."""
        return 0 if self._track is None else self._track.muted_frames

    @property
    def muted(self) -> bool:
        """Whether ``mute()`` is in force: silence is sent in place of the source."""
        return self._muted

    @property
    def interrupting(self) -> bool:
        """Whether the agent's audio is being cut from the sink now (after ``interrupt()``)."""
        return self._cut.cutting

    def interrupt(self) -> float:
        """Cut the agent off: empty the sink's playback queue, and cut the rest of its utterance.

        A sink with a playback queue (``SpeakerSink``; any sink with an
        ``interrupt()`` method) drops what it has not played yet. Then, until
        the agent has been quiet (or sent nothing) for ``INTERRUPT_HANG``
        seconds, the sink gets silence in place of what arrives, so the
        reply does not resume; the agent's next utterance plays as usual.
        ``received_audio()`` is not affected: it yields what arrived. Calling
        it again during a cut starts the wait for quiet anew. Safe at any
        time, before the call or after it (then nothing is queued).

        Returns:
            Seconds of audio the sink dropped from its queue (``0.0`` for a
            sink without one). A sink whose ``interrupt()`` fails is logged,
            and counts ``0.0``.
        """
        self._cut.interrupt(time.monotonic())
        flush = getattr(self._sink, "interrupt", None)
        if not callable(flush) or self._sink_failed:
            return 0.0
        try:
            return float(flush())
        except Exception:
            logger.exception("the audio sink failed to interrupt its playback")
            return 0.0

    def mute(self) -> None:
        """Send silence in place of the source, until ``unmute()``. Idempotent.

        The source is still read (a file plays on, unheard; a microphone
        keeps recording), so the stream and its timing go on unchanged.
        """
        self._muted = True
        if self._track is not None:
            self._track.muted = True

    def unmute(self) -> None:
        """Send the source again, from its next packet. Idempotent."""
        self._muted = False
        if self._track is not None:
            self._track.muted = False

    async def answer(self, offer: str) -> str:
        """Answer the server's offer; return once ICE gathering is complete (or capped).

        The offer is normalized for aiortc (``a=rtcp-mux``, ``a=setup``, static
        payload types...), and aiortc's answer rewritten for the offerer (its
        profile, its payload types). On success the state is ``CONNECTING``,
        and becomes ``FAILED`` unless connected within ``connect_timeout``.

        Args:
            offer: the offer SDP, as the server sent it.

        Returns:
            The answer SDP, with every candidate gathered.

        Raises:
            OfferError: the offer cannot be answered (the reason says why).
            GatheringError: no candidate at all (``GatheringTimeout``: none in time).
            AsyncioRequired: called under trio.
            MediaError: the session is closed (or was, meanwhile), or has
                answered already.
            On ``OfferError`` and ``GatheringError`` the state becomes ``FAILED``.
        """
        require_asyncio()
        if self._closing:
            raise MediaError("the session is closed")
        if self._answered:
            raise MediaError("the session has answered an offer already")
        self._answered = True
        try:
            return await self._answer(offer)
        except MediaError as exc:
            if not self._closing:  # else close() is on it, and this is no failure
                self._fail(exc)
                await self._close_peer()
            raise
        except Exception as exc:
            if not self._closing:
                raise
            # close() ran meanwhile, and aiortc objects to its closed peer connection.
            raise MediaError("the session was closed while answering") from exc

    async def state_changes(self) -> AsyncIterator[MediaState]:
        """The state now, then each new state as it happens; ends after ``FAILED`` or ``CLOSED``."""
        require_asyncio()
        async for state in self._states:
            yield state

    async def received_audio(self) -> AsyncIterator[AudioFrame]:
        """The agent's audio, mono at ``sample_rate``; ends when the session closes.

        Meant for one reader. Up to ``RECEIVED_FRAMES_KEPT`` frames wait for it;
        beyond that the oldest are dropped (counted in ``dropped_frames``).
        """
        require_asyncio()
        async for frame in self._received:
            yield frame

    async def close(self) -> None:
        """Close the peer connection, stop the session's tasks, close the source and sink.

        Idempotent: a second call waits for the first to finish. The state
        becomes ``CLOSED`` (after ``FAILED`` too). The sink is closed even if
        the rest fails; its own error, if any, is raised.
        """
        if self._closing:
            if self._pc is not None:
                await self._closed.wait()
            return
        self._closing = True
        try:
            await self._close_peer()
            await self._stop_tasks()
            await _close_source(self._source)
        finally:
            self._received.close()
            self._states.advance(MediaState.CLOSED)
            try:
                if self._sink is not None:
                    await self._sink.close()
            finally:
                self._closed.set()

    async def _answer(self, offer: str) -> str:
        normalized = _sdp.normalize_offer(offer)
        if normalized.changes:
            logger.info("offer normalized for aiortc: %s", "; ".join(normalized.changes))
        # Imported here: aiortc takes the best part of a second to import.
        from aiortc import (
            RTCConfiguration,
            RTCIceServer,
            RTCPeerConnection,
            RTCSessionDescription,
        )

        from blackbox_media_aiortc._loopback import gather_on_loopback_when_alone
        from blackbox_media_aiortc._track import SourceTrack

        gather_on_loopback_when_alone()
        servers = [RTCIceServer(urls=list(self._ice_servers))] if self._ice_servers else []
        # An explicit empty list: with none given, aiortc adds Google's STUN server.
        pc = self._pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        pc.on("connectionstatechange", self._on_connection_state)
        pc.on("track", self._on_track)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=normalized.sdp, type="offer"))
        except Exception as exc:  # aiortc says no with ValueError, OperationError...
            raise OfferError(f"aiortc refuses it ({type(exc).__name__}: {exc})") from exc
        self._track = SourceTrack(self._source, self.sample_rate, self._gate, self._canceller)
        self._track.muted = self._muted
        pc.addTrack(self._track)
        answer = await pc.createAnswer()
        await self._gather(pc)
        await pc.setLocalDescription(answer)
        text = _sdp.rewrite_answer(pc.localDescription.sdp, normalized)
        self._states.advance(MediaState.CONNECTING)
        self._spawn(self._watch_connect())
        return text

    async def _gather(self, pc: RTCPeerConnection) -> None:
        """Gather all candidates, capped at ``gather_timeout`` (for setLocalDescription)."""
        gatherers = {t.receiver.transport.transport.iceGatherer for t in pc.getTransceivers()}
        loop = asyncio.get_running_loop()
        started = loop.time()
        for gatherer in gatherers:
            _cap_server_wait(gatherer, self._gather_timeout)
        # A task of its own, never cancelled: aioice leaves its STUN retries
        # running if gathering is interrupted, and they then write to closed
        # sockets. close() waits for it instead (it is capped, so not for long).
        self._gathering = asyncio.ensure_future(
            asyncio.gather(*(gatherer.gather() for gatherer in gatherers))
        )
        try:
            await asyncio.wait_for(
                asyncio.shield(self._gathering), self._gather_timeout + _GATHER_GRACE
            )
        except TimeoutError:
            raise GatheringTimeout(self._gather_timeout) from None
        if self._closing:
            raise MediaError("the session was closed while answering")
        self.gathering_time = loop.time() - started
        found = sum(len(gatherer.getLocalCandidates()) for gatherer in gatherers)
        logger.debug("gathered %d ICE candidate(s) in %.3f s", found, self.gathering_time)
        if not found:
            raise GatheringError(
                "ICE gathering found no candidate: no network interface is up, not even "
                "loopback (bring one up: ip link set lo up)"
            )

    def _on_connection_state(self) -> None:
        assert self._pc is not None, "only the peer connection reports states"
        state = self._pc.connectionState
        logger.debug("peer connection: %s", state)
        if state == "failed":
            self._fail(MediaError("the audio connection failed (ICE or DTLS)"))
        elif state == "closed" and not self._peer_closing:
            # The peer ended DTLS and aiortc closed itself: the media is over,
            # which is how a call ends, not a failure.
            self._peer_closing = True
            self._states.advance(MediaState.CLOSED)
            self._spawn(self._stop_tasks())
        elif state in _STATES:
            self._states.advance(_STATES[state])

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._receive(track))

    async def _receive(self, track: MediaStreamTrack) -> None:
        """Resample what aiortc decodes to mono ``sample_rate``; queue it, give it to the sink."""
        from aiortc.mediastreams import MediaStreamError
        from av import AudioFrame as AvFrame

        from blackbox_media_aiortc._audio import MonoResampler

        resampler = MonoResampler(self.sample_rate)
        loop = asyncio.get_running_loop()
        while True:
            try:
                decoded = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(decoded, AvFrame), "an audio track yields audio frames"
            pcm = resampler.resample(decoded)
            if not pcm:
                continue
            if self._gate is not None:
                self._gate.heard(pcm, loop.time())
            frame = AudioFrame(pcm, self.sample_rate, 1)
            self._received.put(frame)
            if not self._cut.passes(pcm, time.monotonic()):
                frame = AudioFrame(bytes(len(pcm)), self.sample_rate, 1)
            if self._canceller is not None:
                self._canceller.far(frame.pcm)  # what the speaker plays
            if self._sink is not None and not self._sink_failed:
                try:
                    await self._sink.write(frame)
                except Exception:
                    logger.exception("the audio sink failed; it gets no more audio")
                    self._sink_failed = True

    async def _watch_connect(self) -> None:
        await asyncio.sleep(self._connect_timeout)
        if self._states.current is MediaState.CONNECTING:
            self._fail(MediaConnectTimeout(self._connect_timeout))
            await self._close_peer()

    def _fail(self, error: MediaError) -> None:
        if self._states.advance(MediaState.FAILED):
            self._failure = error
            logger.warning("media failed: %s", error)

    async def _close_peer(self) -> None:
        """Close the peer connection once (bounded); its "closed" state is not the peer's doing."""
        if self._pc is None or self._peer_closing:
            return
        self._peer_closing = True
        if self._gathering is not None and not self._gathering.done():
            await asyncio.wait({self._gathering}, timeout=self._gather_timeout + _GATHER_GRACE)
        if self._track is not None:
            self._track.stop()
        try:
            await asyncio.wait_for(self._pc.close(), _CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning("the peer connection did not close within %g s", _CLOSE_TIMEOUT)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a media task failed", exc_info=task.exception())

    async def _stop_tasks(self) -> None:
        if not self._tasks:
            return  # nothing started: maybe not even on asyncio (closing after a refusal)
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT)


def _cap_server_wait(gatherer: RTCIceGatherer, seconds: float) -> None:
    """Make aioice wait at most ``seconds`` for STUN/TURN answers, keeping what came in time.

    aiortc has no such setting, and cancelling its gathering loses the host
    candidates too (aioice records them only once every server has answered
    or its 5 s per-server wait is over). aioice's ``get_component_candidates``
    takes that wait as ``timeout``: pass ours. If a later aioice changes it,
    gathering is still bounded, by the caller's ``wait_for``, only without the
    host candidates.
    """
    connection: Any = getattr(gatherer, "_connection", None)
    method = getattr(connection, "get_component_candidates", None)
    if method is None or "timeout" not in inspect.signature(method).parameters:
        logger.warning("cannot cap aioice's wait for ICE servers: this aioice is unknown")
        return
    connection.get_component_candidates = functools.partial(method, timeout=seconds)


async def _close_source(source: AudioSource | None) -> None:
    """Call a source's optional ``close()``, awaiting it if it is a coroutine."""
    close = getattr(source, "close", None)
    if callable(close):
        result = close()
        if inspect.isawaitable(result):
            await result
