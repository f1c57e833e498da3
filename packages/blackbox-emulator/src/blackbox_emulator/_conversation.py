"""One socket's conversation: the ``ServerConnection`` core driven over websockets.

The loop is the SDK's own, ``driving.Driver``, over the accepted socket
(``_socket.RecordedSocket``: paced reads, bounded sends, every frame
recorded). This module acts on the core's events: the agent's decisions come
from ``ScriptedAgent``; the faults act at fixed points (after ``initialize``,
after ``event connection``, at the offer, after each agent text chunk, before
the end); once the core says the conversation is over (``should_close``), the
socket is closed. Everything is sequential, so a message that arrives while
the agent is speaking (pacing its chunks, or voicing them in a call) waits
for the reply to end; but the media's set-up (ICE and DTLS, after the answer)
runs beside the loop, which goes on reading: its outcome is acted on in turn.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 -- the emulator serves on websockets' asyncio server
import functools
import importlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from blackbox_protocol import (
    AnswerReceived,
    ChatMessageReceived,
    ConnectionClosed,
    InitializeReceived,
    ProtocolViolation,
    ServerConnection,
    ServiceError,
    TerminateReceived,
    ToolResponseReceived,
    UnknownMessageReceived,
    encode,
)
from blackbox_protocol import Event as CoreEvent
from blackbox_protocol.driving import Driver
from blackbox_protocol.errors import NOT_ENABLED
from blackbox_protocol.messages import (
    CallType,
    ConversationResultData,
    SdpInvite,
    SdpInviteData,
    ToolCallResult,
)
from websockets.asyncio.server import ServerConnection as WebSocket

from blackbox_emulator._bucket import TokenBucket
from blackbox_emulator._sdp import bad_offer, candidate_hosts, next_version, redirect_candidates
from blackbox_emulator._socket import RecordedSocket, Stalled
from blackbox_emulator.agent import Action, AskTool, Finish, Say, ScriptedAgent
from blackbox_emulator.faults import (
    DUPLICATE_OFFER_AFTER,
    HUGE_FRAME_CHARS,
    Fault,
    garbage_frames,
)
from blackbox_emulator.media import MediaFactory, MediaHook
from blackbox_emulator.records import ConversationRecord
from blackbox_emulator.script import AgentScript, VoiceOptions
from blackbox_emulator.strictness import StrictSocket

__all__ = ["MEDIA_FAILED", "Conversation"]

# What a user of ``blackbox emulator`` must see is logged at WARNING, one line
# naming the conversation: each violation of the protocol by a client, each
# fault injected, each conversation ended by an error frame, each call whose
# media failed. The rest of what the emulator does is INFO; tracebacks DEBUG.
_log = logging.getLogger("blackbox_emulator.conversation")

#: The start of the ``errorMessage`` of a ``webCall`` whose media hook raised.
MEDIA_FAILED: Final = "the emulator's media failed"
#: PROTOCOL.md gives no close code after an error frame; 1008 (policy) fits them all.
_ERROR_CLOSE: Final = 1008


class _Dropped(Exception):
    """The ``drop`` fault aborted the connection: stop at once."""


class _Gone(Exception):
    """A send found the socket closed: the client went away; stop acting."""


class Conversation:
    """Serve one conversation on an accepted WebSocket.

    Args:
        websocket: the accepted socket.
        record: where the frames and the outcome are written.
        script: what the agent says.
        fault: the fault to inject, or ``None``.
        initialize_timeout: seconds the client has to send ``initialize``.
        media: makes the media hook of a ``webCall``; ``None``: the emulator's
            own aiortc peer (``voice.VoicePeer``), shaped by ``voice``.
        voice: the offer's style and key, and the echo agent.
        record_dir: where the built-in peer records each call's caller audio;
            ``None``: no recording.
        max_frame_size: the longest frame served, in characters; a longer
            one gets ``Too large message`` (the core's rule).
        bucket: paces the reading of the client's frames; ``None``: no limit.
        idle_timeout: seconds a frame, or the close, may wait to be sent to a
            client that reads nothing; then the connection is aborted.
            ``None``: no limit.
        lenient: relax the live service's rules (``strictness.RULES``): a
            frame that breaks one goes on to the core instead of closing 1007.
        tool_call_results: send ``toolCallResult`` after each tool response;
            ``None``: the script's choice.
        clean_voice_close: end a voice call with a close frame (1000); by
            default it ends as live: ``event closed``, the result, no close frame.
    """

    def __init__(
        self,
        websocket: WebSocket,
        record: ConversationRecord,
        *,
        script: AgentScript,
        fault: Fault | None,
        initialize_timeout: float,
        media: MediaFactory | None,
        voice: VoiceOptions | None = None,
        record_dir: Path | None = None,
        max_frame_size: int,
        bucket: TokenBucket | None,
        idle_timeout: float | None,
        lenient: bool = False,
        tool_call_results: bool | None = None,
        clean_voice_close: bool = False,
    ) -> None:
        self._record = record
        self._clean_voice_close = clean_voice_close
        self._tool_call_results = (
            script.tool_call_results if tool_call_results is None else tool_call_results
        )
        self._script = script
        self._fault = fault
        self._media_factory = media
        self._media: MediaHook | None = None
        self._voice = voice if voice is not None else script.voice
        self._record_dir = record_dir
        #: Whether the media flows, so the agent's chunks are voiced.
        self._speaking = False
        #: The ``no-ice`` fault's socket that swallows the client's ICE checks.
        self._black_hole: asyncio.DatagramTransport | None = None
        #: The offer sent (the ``second-offer`` fault sends it again).
        self._offer: str | None = None
        # Replaced at ``initialize`` by one given the request's ``additionalData``;
        # before it, the core lets nothing that reaches the agent through.
        self._agent = ScriptedAgent(script)
        # Deadlines on the monotonic clock; the wire's timestamps (and the record's) on the wall's.
        self._core = ServerConnection(
            now=time.monotonic(),
            initialize_timeout=initialize_timeout,
            max_frame_size=max_frame_size,
            wall_clock=time.time,
        )
        self._socket = RecordedSocket(websocket, record, bucket=bucket, idle_timeout=idle_timeout)
        # The live service's schema is checked before the core sees a frame (see strictness).
        strict = StrictSocket(self._socket, record, lenient=lenient, max_frame_size=max_frame_size)
        self._driver = Driver(self._core, strict, clock=time.monotonic)
        #: The core's events not yet acted on, oldest first.
        self._events: deque[CoreEvent] = deque()
        #: What the media's set-up came to, once it did: acted on in the loop.
        self._media_news: deque[Callable[[], Awaitable[None]]] = deque()
        #: The media's set-up after the answer, while it runs: the socket is read meanwhile.
        self._connecting: asyncio.Task[None] | None = None
        self._garbage = garbage_frames(time.time()) if fault is Fault.GARBAGE else []
        self._done = False

    async def run(self, refusal: str | None = None) -> None:
        """Serve the conversation until it ends; never raises for the client's doing.

        Args:
            refusal: an error message (``Invalid token``, ...) to send at once
                instead of serving: the conversation then fails and closes.
        """
        try:
            if refusal is not None:
                self._core.send_error(refusal, now=self._driver.now())
                await self._flush()
            while not self._done:
                if not (self._events or self._media_news or self._core.should_close):
                    self._events.extend(await self._driver.step())
                    self._check_gone()
                if self._media_news and not self._events and not self._core.should_close:
                    await self._media_news.popleft()()
                    await self._flush()
                if self._events:
                    await self._on(self._events.popleft())
                    await self._flush()
                # The events left unread after the end are no news to act on.
                if self._core.should_close and not self._done:
                    await self._close()
        except _Gone:
            # The client went away while the emulator was sending; what it
            # sent before it went (a ``terminate``, typically) still arrived.
            await self._socket.record_the_rest()
        except (_Dropped, Stalled):
            self._record.close_code = None
            return
        finally:
            await self._stop_media()
        self._record.close_code = self._socket.final_close_code

    async def _on(self, event: CoreEvent) -> None:
        match event:
            case InitializeReceived():
                await self._initialized(event)
            case ChatMessageReceived(text=text):
                await self._perform(self._agent.hear(text))
            case ToolResponseReceived(id=tool_id, result=result):
                if self._tool_call_results:
                    await self._tool_call_result(tool_id)
                await self._perform(self._agent.tool_answered(tool_id, result))
            case AnswerReceived(sdp=sdp):
                await self._answered(sdp)
            case TerminateReceived():
                await self._end(self._agent.result)
            case ConnectionClosed():
                self._done = True
            case ProtocolViolation(reason=reason):
                _log.warning(
                    "conversation %d: the client broke the protocol: %s", self._number, reason
                )
            case UnknownMessageReceived(message=message):
                _log.warning(
                    "conversation %d: the client sent a message of unknown type %r",
                    self._number,
                    message.type,
                )

    async def _initialized(self, event: InitializeReceived) -> None:
        self._record.call_type = event.call_type
        if self._fault is Fault.SILENCE:
            _log.warning("conversation %d: fault silence: nothing more is sent", self._number)
            await self._stay_silent()
            return
        if self._fault is Fault.ERROR:
            _log.warning("conversation %d: fault error: %s", self._number, NOT_ENABLED)
            # The core fails the conversation: ``should_close``, and it is closed.
            self._core.send_error(NOT_ENABLED, now=self._driver.now())
            return
        # ``jobId`` as the live service sends it (a hex id), rather than ``recordId``.
        job_id = uuid.uuid4().hex
        self._core.accept(job_id=job_id, now=self._driver.now())
        self._record.job_id = job_id
        self._core.send_event("opened", now=self._driver.now())
        await self._flush()
        if self._fault is Fault.HUGE:
            _log.warning(
                "conversation %d: fault huge: a text frame of %d characters",
                self._number,
                HUGE_FRAME_CHARS,
            )
            self._core.send_text("x" * HUGE_FRAME_CHARS, now=self._driver.now())
            await self._flush()
        self._agent = ScriptedAgent(self._script, additional_data=event.additional_data)
        if event.call_type is CallType.WEB_CALL:
            await self._start_media(event)
        else:
            await self._perform(self._agent.greet())

    async def _start_media(self, event: InitializeReceived) -> None:
        """Voice: offer, and let the agent speak once the answer comes (see ``media``)."""
        if self._fault is Fault.NO_OFFER:
            _log.warning("conversation %d: fault no-offer: no sdpInvite", self._number)
            return
        if self._fault is Fault.BAD_OFFER:
            _log.warning("conversation %d: fault bad-offer: an offer no parser takes", self._number)
            self._core.offer(bad_offer(), key=self._voice.offer_key, now=self._driver.now())
            await self._flush()
            return
        try:
            self._media = await self._make_media(event)
            offer = await self._media.offer()
            if self._fault is Fault.NO_ICE:
                offer = await self._unreachable(offer)
        except Exception as exc:  # the media peer's failure ends this call, not the emulator
            await self._media_failed(exc)
            return
        self._offer = offer
        self._core.offer(offer, key=self._voice.offer_key, now=self._driver.now())
        await self._flush()
        if self._fault is Fault.DUPLICATE_OFFER:
            await asyncio.sleep(DUPLICATE_OFFER_AFTER)
            _log.warning("conversation %d: fault duplicate-offer: the offer again", self._number)
            self._core.offer(offer, key=self._voice.offer_key, now=self._driver.now())
            await self._flush()

    async def _make_media(self, event: InitializeReceived) -> MediaHook:
        if self._media_factory is not None:
            return self._media_factory(event.additional_data)
        # aiortc is imported on the first call, so chat alone never loads it;
        # in a thread, so its half second does not stall the other conversations.
        await asyncio.to_thread(importlib.import_module, "blackbox_emulator.voice")
        from blackbox_emulator.voice import VoicePeer

        recording = None
        if self._record_dir is not None:
            recording = self._record_dir / f"call-{self._number}-{self._record.job_id}.wav"
        return VoicePeer(
            offer_style=self._voice.offer_style,
            echo_audio_after=self._voice.echo_audio_after,
            recording=recording,
        )

    async def _unreachable(self, offer: str) -> str:
        """The ``no-ice`` fault: the offer, its candidates moved to a silent port."""
        hosts = candidate_hosts(offer)
        host = next((host for host in hosts if ":" not in host), "127.0.0.1")
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=(host, 0)
        )
        self._black_hole = transport
        port = transport.get_extra_info("sockname")[1]
        _log.warning(
            "conversation %d: fault no-ice: the offer's candidate at %s:%d, which swallows all",
            self._number,
            host,
            port,
        )
        return redirect_candidates(offer, host, port)

    async def _answered(self, sdp: str) -> None:
        if self._media is None:
            # Only after the ``bad-offer`` fault: there is no peer to answer.
            _log.info("conversation %d: an answer to the bad offer, ignored", self._number)
            return
        if self._fault is Fault.NO_ICE:
            # Applying the answer would make the emulator check the client's
            # candidates, and ICE would connect the other way round.
            _log.info("conversation %d: fault no-ice: the answer is not applied", self._number)
            await self._perform(self._agent.greet())
            return
        # ICE and DTLS take a while, and may never end: the socket is read
        # meanwhile (a ``terminate`` is answered at once), and the outcome is
        # acted on in the loop, in its turn.
        self._connecting = asyncio.create_task(self._connect(self._media, sdp))

    async def _connect(self, media: MediaHook, sdp: str) -> None:
        """Apply the answer and wait for the media; tell the loop how it went."""
        try:
            await media.answered(sdp)
        except Exception as exc:  # as for the offer
            self._media_news.append(functools.partial(self._media_failed, exc))
        else:
            self._media_news.append(self._media_connected)
        self._record.audio_path = media.recording
        self._driver.wake()

    async def _media_connected(self) -> None:
        """The media flows: the agent speaks."""
        self._speaking = True
        if self._fault is Fault.SECOND_OFFER:
            await self._offer_again()
        await self._perform(self._agent.greet())

    async def _offer_again(self) -> None:
        """The ``second-offer`` fault: the offer again, as a new version, past the core."""
        assert self._offer is not None, "the answer came, so the offer was sent"
        sdp = next_version(self._offer)
        again = (
            SdpInviteData(invite=sdp)
            if self._voice.offer_key == "invite"
            else SdpInviteData(sdp_offer=sdp)
        )
        _log.warning("conversation %d: fault second-offer: a new offer in the call", self._number)
        # Through the core, a new offer would fail the emulator's own end too; this
        # server goes on as if nothing happened, so the offer is encoded directly.
        # Its timestamp is the wall clock's, as the core's are.
        await self._send(encode(SdpInvite(data=again), now=time.time()))

    async def _tool_call_result(self, tool_id: str) -> None:
        """The live service's log of an answered tool request, past the core.

        The core has no command for it: the message's shape is unknown to it
        (``ToolCallResult`` keeps everything in ``extra``) and it moves no
        state on either end, so it is encoded here, as live: ``channelId:
        null`` and ``content.id`` alone.
        """
        log = ToolCallResult(extra={"content": {"id": tool_id}})
        await self._send(encode(log, now=time.time()))

    async def _stop_media(self) -> None:
        self._speaking = False
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.wait([self._connecting])
        if self._black_hole is not None:
            self._black_hole.close()
        if self._media is not None:
            media, self._media = self._media, None
            await media.aclose()
            self._record.audio_path = media.recording

    async def _media_failed(self, error: Exception) -> None:
        # One line: a media failure is the call's outcome (a ``Failed`` result),
        # not the emulator's bug; its traceback is for whoever asks for DEBUG.
        _log.warning(
            "conversation %d: the media failed: %s: %s",
            self._number,
            type(error).__name__,
            error,
        )
        _log.debug("conversation %d: where the media failed", self._number, exc_info=error)
        message = f"{MEDIA_FAILED}: {error}"
        await self._end(ConversationResultData(status="Failed", error_message=message))

    async def _perform(self, actions: list[Action]) -> None:
        spoken = 0
        for action in actions:
            match action:
                case Say(text=text, source="user"):
                    self._core.send_text(text, source="user", now=self._driver.now())
                    await self._flush()
                case Say(text=text):
                    if spoken and self._script.chunk_delay:
                        await asyncio.sleep(self._script.chunk_delay)
                    spoken += 1
                    self._core.send_text(text, now=self._driver.now())
                    await self._flush()
                    if self._speaking and self._media is not None:
                        await self._media.speak(text)
                    await self._after_agent_text()
                case AskTool(id=tool_id, name=name, args=args):
                    self._core.request_tool(tool_id, name, args, now=self._driver.now())
                    await self._flush()
                case Finish(result=result):
                    await self._end(result)

    async def _after_agent_text(self) -> None:
        if self._fault is Fault.DROP:
            _log.warning("conversation %d: fault drop: aborting the connection", self._number)
            self._socket.abort()
            raise _Dropped
        if self._garbage:
            frame = self._garbage.pop(0)
            _log.warning("conversation %d: fault garbage: sent %r", self._number, frame)
            await self._send(frame)

    # Endings.

    async def _end(self, result: ConversationResultData) -> None:
        """Send the result: the conversation is over (``should_close``)."""
        for frame in self._garbage:
            _log.warning("conversation %d: fault garbage: sent %r", self._number, frame)
            await self._send(frame)
        self._garbage.clear()
        if self._drops_at_the_end():
            # As live: the service says the call closed before its result.
            self._core.send_event("closed", now=self._driver.now())
        self._core.end(result, now=self._driver.now())

    def _drops_at_the_end(self) -> bool:
        """Whether the socket ends with no close frame after the result, as a live voice call."""
        if self._fault is Fault.DROP_AFTER_RESULT:
            return True
        return self._record.call_type is CallType.WEB_CALL and not self._clean_voice_close

    async def _close(self) -> None:
        """Close the socket once the core's conversation is over: ended, or failed."""
        self._done = True
        error = self._core.error
        if error is None:
            if self._drops_at_the_end():
                if self._fault is Fault.DROP_AFTER_RESULT:
                    _log.info("conversation %d: fault drop-after-result", self._number)
                await self._socket.drop_after_sending()
                return
            await self._socket.close(1000, "")
            return
        # The driver sent the core's error frame: a refusal, a timeout, a broken rule.
        message = error.message if isinstance(error, ServiceError) else str(error)
        self._record.error = message
        self._record.close_reason = message
        _log.warning(
            "conversation %d: ended by the error frame %r, close %d",
            self._number,
            message,
            _ERROR_CLOSE,
        )
        await self._socket.close(_ERROR_CLOSE, message)

    async def _stay_silent(self) -> None:
        """The ``silence`` fault: read (and record) until the client gives up."""
        self._done = True
        while await self._socket.receive() is not None:
            pass

    # Sending.

    async def _flush(self) -> None:
        """Send what the core queued; its events wait their turn in ``_events``."""
        self._events.extend(await self._driver.flush())
        self._check_gone()

    async def _send(self, frame: str | bytes) -> None:
        """Send a frame past the core (a fault's)."""
        try:
            await self._socket.send(frame)
        except ConnectionError:
            raise _Gone from None

    def _check_gone(self) -> None:
        """Stop acting once a send found the socket closed (the driver reports no such failure).

        Raises:
            _Gone: the client went away.
        """
        if self._socket.gone:
            raise _Gone

    @property
    def _number(self) -> int:
        return self._record.number
