"""One socket's conversation: the ``ServerConnection`` core driven over websockets.

The loop is the usual sans-IO driver: receive a frame (or let the core's
deadline pass), feed it to the core, act on the core's events, send the
frames it queued. The agent's decisions come from ``ScriptedAgent``; the
faults act at fixed points (after ``initialize``, after ``event connection``,
at the offer, after each agent text chunk, before the end). Everything is
sequential, so a message that arrives while the agent is speaking (pacing its
chunks, or voicing them in a call) waits for the reply to end.

The limits of a shared server act here: frames are read no faster than the
connection's token bucket allows (unread frames wait in the socket: the
client's sends slow down, as with any busy server), and a frame or a close
that cannot be sent for ``idle_timeout`` (a client that reads nothing) aborts
the connection.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 -- the emulator serves on websockets' asyncio server
import importlib
import logging
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Final

from blackbox_protocol import (
    AnswerReceived,
    BlackBoxError,
    ChatMessageReceived,
    ConnectionClosed,
    ConversationFailed,
    DisconnectedError,
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
from blackbox_protocol.errors import NOT_ENABLED
from blackbox_protocol.messages import CallType, ConversationResultData, SdpInvite, SdpInviteData
from websockets.asyncio.server import ServerConnection as WebSocket
from websockets.exceptions import ConnectionClosed as WebSocketClosed

from blackbox_emulator._bucket import TokenBucket, frame_cost
from blackbox_emulator._sdp import bad_offer, candidate_hosts, next_version, redirect_candidates
from blackbox_emulator.agent import Action, AskTool, Finish, Say, ScriptedAgent
from blackbox_emulator.faults import (
    DUPLICATE_OFFER_AFTER,
    HUGE_FRAME_CHARS,
    Fault,
    garbage_frames,
)
from blackbox_emulator.media import MediaFactory, MediaHook
from blackbox_emulator.records import ConversationRecord, Direction
from blackbox_emulator.script import AgentScript, VoiceOptions

__all__ = ["MEDIA_FAILED", "Conversation"]

_log = logging.getLogger("blackbox_emulator.conversation")

#: The start of the ``errorMessage`` of a ``webCall`` whose media hook raised.
MEDIA_FAILED: Final = "the emulator's media failed"
#: PROTOCOL.md gives no close code after an error frame; 1008 (policy) fits them all.
_ERROR_CLOSE: Final = 1008
#: The close code websockets reports when no close frame came (never on the wire).
_NO_CLOSE_FRAME: Final = 1006


class _Timer:
    """What ``_receive`` returns when the core's deadline passed first."""


_TIMER: Final = _Timer()


class _Dropped(Exception):
    """The ``drop`` fault aborted the connection: stop at once."""


class _Stalled(Exception):
    """A send or the close waited ``idle_timeout`` on a client that reads nothing: aborted."""


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
    ) -> None:
        self._ws = websocket
        self._record = record
        self._script = script
        self._fault = fault
        self._media_factory = media
        self._media: MediaHook | None = None
        self._voice = voice if voice is not None else script.voice
        self._record_dir = record_dir
        self._bucket = bucket
        self._idle_timeout = idle_timeout
        #: Whether reading has been held back by the bucket (logged once).
        self._throttled = False
        #: Whether the media flows, so the agent's chunks are voiced.
        self._speaking = False
        #: The ``no-ice`` fault's socket that swallows the client's ICE checks.
        self._black_hole: asyncio.DatagramTransport | None = None
        #: The offer sent (the ``second-offer`` fault sends it again).
        self._offer: str | None = None
        # Replaced at ``initialize`` by one given the request's ``additionalData``;
        # before it, the core lets nothing that reaches the agent through.
        self._agent = ScriptedAgent(script)
        self._core = ServerConnection(
            now=time.time(), initialize_timeout=initialize_timeout, max_frame_size=max_frame_size
        )
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
                self._core.send_error(refusal, now=time.time())
                await self._drain_events()
            while not self._done:
                await self._step()
        except WebSocketClosed:
            # The client went away while the emulator was sending; what it
            # sent before it went (a ``terminate``, typically) still arrived.
            await self._record_the_rest()
        except (_Dropped, _Stalled):
            self._record.close_code = None
            return
        finally:
            await self._stop_media()
        code = self._ws.close_code
        self._record.close_code = None if code == _NO_CLOSE_FRAME else code

    # The loop.

    async def _step(self) -> None:
        received = await self._receive()
        now = time.time()
        if isinstance(received, _Timer):
            self._core.handle_timer(now=now)
        elif received is not None:
            self._record.add(Direction.IN, received, now)
            self._core.receive_frame(received, now=now)
        await self._drain_events()

    async def _receive(self) -> str | bytes | _Timer | None:
        """The next frame, ``_TIMER`` when the deadline passed, ``None`` once closed."""
        deadline = self._core.next_deadline()
        try:
            if deadline is None:
                return await self._read()
            async with asyncio.timeout(max(0.0, deadline - time.time())):
                return await self._read()
        except TimeoutError:
            return _TIMER
        except WebSocketClosed as closed:
            code = None if closed.rcvd is None else closed.rcvd.code
            reason = "" if closed.rcvd is None else closed.rcvd.reason
            self._core.receive_close(code, reason)
            return None

    async def _read(self) -> str | bytes:
        """The next frame, once the bucket has a token for it.

        Raises:
            websockets.exceptions.ConnectionClosed: the socket closed.
        """
        if self._bucket is None:
            return await self._ws.recv()
        delay = self._bucket.delay(now=time.monotonic())
        if delay > 0:
            if not self._throttled:
                self._throttled = True
                _log.warning(
                    "conversation %d: the client sends frames faster than the rate limit:"
                    " reading them is slowed down",
                    self._number,
                )
            await asyncio.sleep(delay)
        frame = await self._ws.recv()
        self._bucket.take(frame_cost(frame), now=time.monotonic())
        return frame

    async def _drain_events(self) -> None:
        """Act on the core's events, including those the acting produces."""
        while not self._done:
            events = self._core.events_received()
            if not events:
                break
            for event in events:
                await self._on(event)
                if self._done:
                    return
        await self._flush()

    async def _on(self, event: CoreEvent) -> None:
        match event:
            case InitializeReceived():
                await self._initialized(event)
            case ChatMessageReceived(text=text):
                await self._perform(self._agent.hear(text))
            case ToolResponseReceived(id=tool_id, result=result):
                await self._perform(self._agent.tool_answered(tool_id, result))
            case AnswerReceived(sdp=sdp):
                await self._answered(sdp)
            case TerminateReceived():
                await self._end(self._agent.result)
            case ConversationFailed(error=error):
                await self._failed(error)
            case ConnectionClosed():
                self._done = True
            case ProtocolViolation(reason=reason):
                _log.info(
                    "conversation %d: the client broke the protocol: %s", self._number, reason
                )
            case UnknownMessageReceived(message=message):
                _log.info("conversation %d: unknown message %r", self._number, message.type)

    async def _initialized(self, event: InitializeReceived) -> None:
        self._record.call_type = event.call_type
        if self._fault is Fault.SILENCE:
            await self._stay_silent()
            return
        if self._fault is Fault.ERROR:
            # The core fails the conversation; ``ConversationFailed`` closes it.
            self._core.send_error(NOT_ENABLED, now=time.time())
            return
        # ``jobId`` as the live service sends it (a hex id), rather than ``recordId``.
        job_id = uuid.uuid4().hex
        self._core.accept(job_id=job_id, now=time.time())
        self._record.job_id = job_id
        self._core.send_event("opened", now=time.time())
        await self._flush()
        if self._fault is Fault.HUGE:
            self._core.send_text("x" * HUGE_FRAME_CHARS, now=time.time())
            await self._flush()
        self._agent = ScriptedAgent(self._script, additional_data=event.additional_data)
        if event.call_type is CallType.WEB_CALL:
            await self._start_media(event)
        else:
            await self._perform(self._agent.greet())

    async def _start_media(self, event: InitializeReceived) -> None:
        """Voice: offer, and let the agent speak once the answer comes (see ``media``)."""
        if self._fault is Fault.NO_OFFER:
            _log.info("conversation %d: fault no-offer: no sdpInvite", self._number)
            return
        if self._fault is Fault.BAD_OFFER:
            _log.info("conversation %d: fault bad-offer", self._number)
            self._core.offer(bad_offer(), key=self._voice.offer_key, now=time.time())
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
        self._core.offer(offer, key=self._voice.offer_key, now=time.time())
        await self._flush()
        if self._fault is Fault.DUPLICATE_OFFER:
            await asyncio.sleep(DUPLICATE_OFFER_AFTER)
            _log.info("conversation %d: fault duplicate-offer: the offer again", self._number)
            self._core.offer(offer, key=self._voice.offer_key, now=time.time())
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
        _log.info("conversation %d: fault no-ice: candidates at %s:%d", self._number, host, port)
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
        else:
            try:
                await self._media.answered(sdp)
            except Exception as exc:  # as for the offer
                self._record.audio_path = self._media.recording
                await self._media_failed(exc)
                return
            self._record.audio_path = self._media.recording
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
        _log.info("conversation %d: fault second-offer", self._number)
        # Through the core, a new offer would fail the emulator's own end too; this
        # server goes on as if nothing happened, so the offer is encoded directly.
        await self._send(encode(SdpInvite(data=again), now=time.time()))

    async def _stop_media(self) -> None:
        self._speaking = False
        if self._black_hole is not None:
            self._black_hole.close()
        if self._media is not None:
            media, self._media = self._media, None
            await media.aclose()
            self._record.audio_path = media.recording

    async def _media_failed(self, error: Exception) -> None:
        _log.warning("conversation %d: the media failed", self._number, exc_info=error)
        message = f"{MEDIA_FAILED}: {error}"
        await self._end(ConversationResultData(status="Failed", error_message=message))

    async def _perform(self, actions: list[Action]) -> None:
        spoken = 0
        for action in actions:
            match action:
                case Say(text=text, source="user"):
                    self._core.send_text(text, source="user", now=time.time())
                    await self._flush()
                case Say(text=text):
                    if spoken and self._script.chunk_delay:
                        await asyncio.sleep(self._script.chunk_delay)
                    spoken += 1
                    self._core.send_text(text, now=time.time())
                    await self._flush()
                    if self._speaking and self._media is not None:
                        await self._media.speak(text)
                    await self._after_agent_text()
                case AskTool(id=tool_id, name=name, args=args):
                    self._core.request_tool(tool_id, name, args, now=time.time())
                    await self._flush()
                case Finish(result=result):
                    await self._end(result)

    async def _after_agent_text(self) -> None:
        if self._fault is Fault.DROP:
            _log.info("conversation %d: fault drop: aborting the connection", self._number)
            self._ws.transport.abort()
            raise _Dropped
        if self._garbage:
            await self._send(self._garbage.pop(0))

    # Endings.

    async def _end(self, result: ConversationResultData) -> None:
        """Send the result, then close: the conversation is over."""
        for frame in self._garbage:
            await self._send(frame)
        self._garbage.clear()
        self._core.end(result, now=time.time())
        await self._close(1000, "")

    async def _failed(self, error: BlackBoxError) -> None:
        if isinstance(error, DisconnectedError):
            self._done = True
            return
        # Otherwise the core queued an error frame (a refusal, a timeout, a broken rule).
        message = error.message if isinstance(error, ServiceError) else str(error)
        self._record.error = message
        _log.info("conversation %d: failed: %s", self._number, message)
        await self._close(_ERROR_CLOSE, message)

    async def _close(self, code: int, reason: str) -> None:
        await self._flush()
        self._done = True
        await self._unless_stalled(self._ws.close(code, reason))

    async def _stay_silent(self) -> None:
        """The ``silence`` fault: read (and record) until the client gives up."""
        self._done = True
        while True:
            try:
                frame = await self._read()
            except WebSocketClosed:
                return
            self._record.add(Direction.IN, frame, time.time())

    async def _record_the_rest(self) -> None:
        """Record the frames the client sent before the connection closed."""
        while True:
            try:
                frame = await self._ws.recv()
            except WebSocketClosed:
                return
            self._record.add(Direction.IN, frame, time.time())

    # Sending.

    async def _flush(self) -> None:
        for frame in self._core.frames_to_send():
            await self._send(frame)

    async def _send(self, frame: str | bytes) -> None:
        self._record.add(Direction.OUT, frame, time.time())
        await self._unless_stalled(self._ws.send(frame))

    async def _unless_stalled(self, sending: Awaitable[None]) -> None:
        """Await a send or the close; abort the connection past ``idle_timeout``.

        Only a client that reads nothing makes a send wait (websockets waits
        for its write buffer to drain), and waiting on it forever would hold
        the socket and this task for good.

        Raises:
            _Stalled: the connection was aborted.
        """
        try:
            async with asyncio.timeout(self._idle_timeout):
                await sending
        except TimeoutError:
            _log.warning(
                "conversation %d: the client read nothing for %g s: connection aborted",
                self._number,
                self._idle_timeout,
            )
            self._ws.transport.abort()
            raise _Stalled from None

    @property
    def _number(self) -> int:
        return self._record.number
