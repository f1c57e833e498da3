"""The emulator: a local server that speaks the BlackBox web-integration protocol.

Same path and query as the service (``/api/v1/ws/webCall?token=TOKEN``), the
documented error frames for a missing or wrong token and a refused origin,
then one ``Conversation`` per socket. Conversations share nothing but the
list of records.

Run as a long-lived shared server, it bounds what any client can hold: the
time to open a WebSocket and to send ``initialize``, the number of
conversations at once (HTTP 503 past it), the size of a frame and the pace at
which a connection's frames are read, the records kept and what each keeps.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 -- websockets' server (and aiortc) run on asyncio
import dataclasses
import hmac
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, quote, urlsplit

from blackbox_protocol.errors import INVALID_TOKEN, MISSING_TOKEN, ORIGIN_NOT_ALLOWED
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as serve_websockets
from websockets.http11 import Request, Response

from blackbox_emulator._bucket import TokenBucket
from blackbox_emulator._conversation import Conversation
from blackbox_emulator._redact import redact, websockets_logger
from blackbox_emulator.faults import Fault
from blackbox_emulator.media import MediaFactory
from blackbox_emulator.records import ConversationRecord
from blackbox_emulator.script import AgentScript, OfferKey, OfferStyle, VoiceOptions

__all__ = [
    "INVALID_TOKEN",
    "MISSING_TOKEN",
    "ORIGIN_NOT_ALLOWED",
    "WEBCALL_PATH",
    "Emulator",
    "serve",
]

_log = logging.getLogger("blackbox_emulator.emulator")

#: The service's path for chat and voice conversations.
WEBCALL_PATH: Final = "/api/v1/ws/webCall"

#: websockets counts bytes and the core characters: a UTF-8 character takes up
#: to 4 bytes, so websockets reads frames up to 4 bytes a character; every
#: frame within the core's limit reaches it, and the core answers one over it
#: with the service's ``Too large message``.
_BYTES_PER_CHARACTER: Final = 4
#: Frames websockets holds unread before it stops reading the socket (its
#: default is 16): with the frame size, it bounds a connection's buffers.
_MAX_QUEUE: Final = 4
#: How long a close waits for the client's close frame (websockets' default is 10 s).
_CLOSE_TIMEOUT: Final = 2.0
#: What a refused connection is told to wait before trying again, in seconds.
_RETRY_AFTER: Final = 1


class Emulator:
    """A local BlackBox-compatible server; an async context manager.

    ``async with Emulator() as emu:`` listens on ``emu.server`` until the block
    ends; connect to ``emu.url_for(emu.token)``. Many conversations may run at
    once, one task per socket.

    Args:
        host: the address to listen on.
        port: the port; 0 picks a free one (read it from ``port`` once started).
        token: the only token accepted; ``None`` makes a random one.
        script: the agent's script, or the path of a script file; ``None``
            is ``AgentScript.default()``.
        fault: a fault to inject into every conversation (a ``Fault`` or its
            name), or ``None``.
        allowed_origins: when set, the ``Origin`` headers accepted; any other
            (or none) gets ``Origin not allowed``.
        initialize_timeout: seconds a client has to send ``initialize``.
        media: makes the media peer of each ``webCall``; ``None``: the
            emulator's own aiortc peer (``voice.VoicePeer``).
        offer_style: ``"sip"`` (the live service's offer shape) or
            ``"browser"`` (aiortc's own); ``None``: the script's
            (``[voice]``), by default ``"sip"``.
        offer_key: ``"invite"`` (live) or ``"sdpOffer"`` (documented), the
            key of the offer in ``sdpInvite.data``; ``None``: the script's,
            by default ``"invite"``.
        echo_audio_after: make the agent an echo that plays back what it
            hears this many seconds later; ``None``: the script's, by default
            no echo (the agent voices its text as tones).
        record_dir: a directory to record what each caller says into, one WAV
            file per call (``ConversationRecord.audio_path``); ``None``: none.
        handshake_timeout: seconds a TCP connection has to complete the
            WebSocket handshake (websockets' ``open_timeout``); then it is
            closed. ``None``: no limit.
        idle_timeout: seconds a frame, or the close, may wait to be sent to a
            client that reads nothing (its buffers full); then the TCP
            connection is aborted. ``None``: no limit.
        max_connections: the most conversations open at once; a WebSocket
            handshake past it gets HTTP 503. ``None``: no limit.
        max_frame_size: the longest frame served from a client, in
            characters; a longer one gets ``Too large message`` (close 1008),
            or, over 4 bytes a character, is refused by websockets from its
            header, unread (close 1009).
        max_frame_rate: frames a second read from each connection, on
            average (a frame costs one, plus one per full 64 Ki characters);
            faster frames wait unread. ``None``: no limit.
        max_frame_burst: frames a connection may send at once before the rate
            applies.
        max_records: the records kept, the newest (``conversations``); older
            ones are dropped. ``None``: every record.
        max_record_frames: the frames a record keeps; later ones are counted
            (``ConversationRecord.frames_dropped``). ``None``: every frame.
        max_record_size: the characters (bytes, for binary frames) a record's
            frames hold in all; a frame that does not fit is counted, not
            kept. ``None``: no limit.
        lenient: relax the live service's rules (``strictness.RULES``): a
            client frame that breaks one goes on to the protocol core
            instead of closing the socket with 1007; each rule relaxed is
            logged at WARNING once per conversation.
        tool_call_results: send a ``toolCallResult`` after each tool
            response, as live; ``None``: the script's (by default, on).
        clean_voice_close: end a voice call with a close frame (1000) after
            its result; by default it ends as live: ``event closed``, the
            result, then the TCP connection dropped with no close frame (1006).

    Raises:
        ValueError: an empty token, an unknown fault name, or a limit that is
            not positive (``max_records`` may be 0: none kept).
        ScriptError: the script file is invalid, or a voice option is.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        script: AgentScript | str | os.PathLike[str] | None = None,
        fault: Fault | str | None = None,
        allowed_origins: Iterable[str] | None = None,
        initialize_timeout: float = 10.0,
        media: MediaFactory | None = None,
        offer_style: OfferStyle | None = None,
        offer_key: OfferKey | None = None,
        echo_audio_after: float | None = None,
        record_dir: str | os.PathLike[str] | None = None,
        handshake_timeout: float | None = 10.0,
        idle_timeout: float | None = 30.0,
        max_connections: int | None = 256,
        max_frame_size: int = 1024 * 1024,
        max_frame_rate: float | None = 100.0,
        max_frame_burst: int = 200,
        max_records: int | None = 100,
        max_record_frames: int | None = 1000,
        max_record_size: int | None = 256 * 1024,
        lenient: bool = False,
        tool_call_results: bool | None = None,
        clean_voice_close: bool = False,
    ) -> None:
        if token == "":
            raise ValueError("the token must not be empty")
        _check_positive(
            {
                "initialize_timeout": initialize_timeout,
                "handshake_timeout": handshake_timeout,
                "idle_timeout": idle_timeout,
                "max_connections": max_connections,
                "max_frame_size": max_frame_size,
                "max_frame_rate": max_frame_rate,
                "max_frame_burst": max_frame_burst,
                "max_record_frames": max_record_frames,
                "max_record_size": max_record_size,
            }
        )
        if max_records is not None and max_records < 0:
            raise ValueError(f"max_records must be 0 or more, or None, not {max_records!r}")
        self._host = host
        self._port = port
        self._token = token if token is not None else secrets.token_urlsafe(24)
        if script is None:
            script = AgentScript.default()
        elif not isinstance(script, AgentScript):
            script = AgentScript.load(script)
        self._script = script
        overrides: dict[str, Any] = {
            "offer_style": offer_style,
            "offer_key": offer_key,
            "echo_audio_after": echo_audio_after,
        }
        self._voice = dataclasses.replace(
            script.voice, **{key: value for key, value in overrides.items() if value is not None}
        )
        self._record_dir = None if record_dir is None else Path(record_dir)
        self._fault = Fault.parse(fault)
        self._allowed_origins = None if allowed_origins is None else frozenset(allowed_origins)
        self._initialize_timeout = initialize_timeout
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._max_frame_size = max_frame_size
        self._max_frame_rate = max_frame_rate
        self._max_frame_burst = max_frame_burst
        self._max_record_frames = max_record_frames
        self._max_record_size = max_record_size
        self._media = media
        self._lenient = lenient
        self._tool_call_results = tool_call_results
        self._clean_voice_close = clean_voice_close
        self._records: deque[ConversationRecord] = deque(maxlen=max_records)
        self._numbered = 0
        self._dropped_records = 0
        self._refused_connections = 0
        #: Every TCP connection accepted and not yet lost, handshake or not.
        self._sockets: set[ServerConnection] = set()
        #: Handshakes admitted (the cap counts them) whose conversation has not started.
        self._opening: set[ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: Server | None = None

    # Lifecycle.

    async def start(self) -> None:
        """Start listening.

        Raises:
            RuntimeError: already started.
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        # An asyncio.Event binds to the loop that first waits on it: one per run.
        self._idle = asyncio.Event()
        self._idle.set()
        self._server = await serve_websockets(
            self._handle,
            self._host,
            self._port,
            process_request=self._route,
            open_timeout=self._handshake_timeout,
            max_size=_BYTES_PER_CHARACTER * self._max_frame_size,
            max_queue=_MAX_QUEUE,
            close_timeout=_CLOSE_TIMEOUT,
            logger=websockets_logger(),
            create_connection=_tracked(self._sockets),
        )
        self._port = self._server.sockets[0].getsockname()[1]
        _log.info("emulator listening on %s", self.server)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close every conversation (1001, going away); idempotent.

        Args:
            timeout: seconds to let conversations end (a reply being paced by
                ``chunk_delay`` ends at its next chunk); then they are cancelled.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # A socket that sent no handshake request yet would hold the stop for
        # ``handshake_timeout``; one that did is refused (503) by websockets.
        for connection in list(self._sockets):
            if connection.request is None:
                connection.transport.abort()
        try:
            async with asyncio.timeout(timeout):
                await server.wait_closed()
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
            # A close stuck behind a client that reads nothing ends only with its socket.
            for connection in list(self._sockets):
                connection.transport.abort()
            await server.wait_closed()
        _log.info("emulator stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_until_idle(self) -> None:
        """Wait until no conversation is running (every record is ``finished``)."""
        await self._idle.wait()

    # What it is.

    @property
    def server(self) -> str:
        """The base URL, e.g. ``ws://127.0.0.1:54321`` (what an SDK's ``server=`` takes).

        Raises:
            RuntimeError: not started.
        """
        if self._server is None:
            raise RuntimeError("the emulator is not running: use `async with Emulator() as emu`")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self._port}"

    @property
    def host(self) -> str:
        """The address listened on."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (the one picked, once started with port 0)."""
        return self._port

    @property
    def token(self) -> str:
        """The token the emulator accepts. A credential: never log it."""
        return self._token

    @property
    def script(self) -> AgentScript:
        """The agent's script."""
        return self._script

    @property
    def fault(self) -> Fault | None:
        """The fault injected into every conversation, if any."""
        return self._fault

    @property
    def voice(self) -> VoiceOptions:
        """How voice calls are offered and voiced: the script's, with the options given."""
        return self._voice

    @property
    def lenient(self) -> bool:
        """Whether the live service's rules are relaxed (``strictness.RULES``)."""
        return self._lenient

    @property
    def record_dir(self) -> Path | None:
        """Where each call's caller audio is recorded, if anywhere."""
        return self._record_dir

    @property
    def conversations(self) -> list[ConversationRecord]:
        """The records kept, oldest first (a snapshot): the newest ``max_records``."""
        return list(self._records)

    @property
    def dropped_records(self) -> int:
        """The records dropped so far to keep ``max_records``, the oldest first."""
        return self._dropped_records

    @property
    def open_connections(self) -> int:
        """The conversations open now, and the handshakes admitted to open one."""
        return len(self._tasks) + len(self._opening & self._sockets)

    @property
    def refused_connections(self) -> int:
        """The handshakes refused with HTTP 503 so far: ``max_connections`` were open."""
        return self._refused_connections

    def url_for(self, token: str | None) -> str:
        """The full URL of a conversation with ``token`` (URL-encoded); ``None``: no token."""
        url = f"{self.server}{WEBCALL_PATH}"
        return url if token is None else f"{url}?token={quote(token, safe='')}"

    def __repr__(self) -> str:
        where = "not running" if self._server is None else self.server
        fault = None if self._fault is None else self._fault.value
        return f"<Emulator {where} fault={fault} conversations={self._numbered}>"

    # Serving.

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != WEBCALL_PATH:
            _log.info("no such path: %s", redact(request.path))
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        # A handshake that fails after this (a request without the upgrade
        # headers) never reaches the handler: it is counted while its socket lives.
        self._opening &= self._sockets
        if self._max_connections is not None and self.open_connections >= self._max_connections:
            return self._busy(connection)
        self._opening.add(connection)
        return None

    def _busy(self, connection: ServerConnection) -> Response:
        """The refusal of a handshake past ``max_connections``: HTTP 503, said in words."""
        self._refused_connections += 1
        _log.warning(
            "connection refused with HTTP 503: max_connections (%d) conversations are open;"
            " %d refused so far",
            self._max_connections,
            self._refused_connections,
        )
        response = connection.respond(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"The BlackBox emulator is serving {self._max_connections} conversations,"
            " the most it takes at once (max_connections). Try again later.\n",
        )
        response.headers["Retry-After"] = str(_RETRY_AFTER)
        return response

    def _refusal(self, request: Request) -> str | None:
        """The error frame a request gets instead of a conversation, if any."""
        tokens = parse_qs(urlsplit(request.path).query, keep_blank_values=True).get("token")
        if not tokens or not tokens[0]:
            return MISSING_TOKEN
        if not hmac.compare_digest(tokens[0].encode(), self._token.encode()):
            return INVALID_TOKEN
        origin = request.headers.get("Origin")
        if self._allowed_origins is not None and origin not in self._allowed_origins:
            return ORIGIN_NOT_ALLOWED
        return None

    async def _handle(self, websocket: ServerConnection) -> None:
        request = websocket.request
        assert request is not None, "websockets calls the handler after the handshake"
        self._numbered += 1
        record = ConversationRecord(
            number=self._numbered,
            path=redact(request.path),
            origin=request.headers.get("Origin"),
            max_frames=self._max_record_frames,
            max_size=self._max_record_size,
        )
        if len(self._records) == self._records.maxlen:
            self._dropped_records += 1
        self._records.append(record)
        task = asyncio.current_task()
        assert task is not None, "websockets runs each handler in a task"
        self._tasks.add(task)
        self._opening.discard(websocket)
        self._idle.clear()
        bucket = None
        if self._max_frame_rate is not None:
            bucket = TokenBucket(self._max_frame_rate, self._max_frame_burst, now=time.monotonic())
        try:
            conversation = Conversation(
                websocket,
                record,
                script=self._script,
                fault=self._fault,
                initialize_timeout=self._initialize_timeout,
                media=self._media,
                voice=self._voice,
                record_dir=self._record_dir,
                max_frame_size=self._max_frame_size,
                bucket=bucket,
                idle_timeout=self._idle_timeout,
                lenient=self._lenient,
                tool_call_results=self._tool_call_results,
                clean_voice_close=self._clean_voice_close,
            )
            await conversation.run(self._refusal(request))
        except Exception:
            # A bug of the emulator's; the client sees the socket close.
            _log.exception("conversation %d: the emulator failed", record.number)
        finally:
            record.finished = True
            self._tasks.discard(task)
            if not self._tasks:
                self._idle.set()


def _tracked(sockets: set[ServerConnection]) -> type[ServerConnection]:
    """websockets' connection class, keeping ``sockets`` the set of its live TCP connections."""

    class TrackedConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            sockets.add(self)

        def connection_lost(self, exc: Exception | None) -> None:
            sockets.discard(self)
            super().connection_lost(exc)

    return TrackedConnection


def _check_positive(limits: Mapping[str, float | None]) -> None:
    """Raise ``ValueError`` for a limit that is set and not above zero."""
    for name, value in limits.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be above 0, not {value!r}")


async def serve(emulator: Emulator, *, ready: Callable[[Emulator], object] | None = None) -> None:
    """Run ``emulator`` until cancelled (Ctrl-C under ``asyncio.run``), then stop it.

    This is what ``blackbox emulator`` runs.

    Args:
        emulator: the emulator to run (not started).
        ready: called once it listens, e.g. to print ``emulator.server``.
    """
    async with emulator:
        if ready is not None:
            ready(emulator)
        await asyncio.Event().wait()
