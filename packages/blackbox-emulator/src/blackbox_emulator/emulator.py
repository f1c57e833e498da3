"""The emulator: a local server that speaks the BlackBox web-integration protocol.

Same path and query as the service (``/api/v1/ws/webCall?token=TOKEN``), the
documented error frames for a missing or wrong token and a refused origin,
then one ``Conversation`` per socket. Conversations share nothing but the
list of records.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 -- websockets' server (and aiortc) run on asyncio
import dataclasses
import hmac
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, quote, urlsplit

from blackbox_protocol import DEFAULT_MAX_FRAME_SIZE
from blackbox_protocol.errors import INVALID_TOKEN, MISSING_TOKEN, ORIGIN_NOT_ALLOWED
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as serve_websockets
from websockets.http11 import Request, Response

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
#: to 4 bytes, so every frame the core would judge reaches it, and the core
#: answers an oversized one with the service's ``Too large message``.
_MAX_MESSAGE_BYTES: Final = 4 * DEFAULT_MAX_FRAME_SIZE
#: How long a close waits for the client's close frame (websockets' default is 10 s).
_CLOSE_TIMEOUT: Final = 2.0


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

    Raises:
        ValueError: an empty token or an unknown fault name.
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
    ) -> None:
        if token == "":
            raise ValueError("the token must not be empty")
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
        self._media = media
        self._records: list[ConversationRecord] = []
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
            max_size=_MAX_MESSAGE_BYTES,
            close_timeout=_CLOSE_TIMEOUT,
            logger=websockets_logger(),
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
        try:
            async with asyncio.timeout(timeout):
                await server.wait_closed()
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
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
    def record_dir(self) -> Path | None:
        """Where each call's caller audio is recorded, if anywhere."""
        return self._record_dir

    @property
    def conversations(self) -> list[ConversationRecord]:
        """The records of every conversation so far, oldest first (a snapshot)."""
        return list(self._records)

    def url_for(self, token: str | None) -> str:
        """The full URL of a conversation with ``token`` (URL-encoded); ``None``: no token."""
        url = f"{self.server}{WEBCALL_PATH}"
        return url if token is None else f"{url}?token={quote(token, safe='')}"

    def __repr__(self) -> str:
        where = "not running" if self._server is None else self.server
        fault = None if self._fault is None else self._fault.value
        return f"<Emulator {where} fault={fault} conversations={len(self._records)}>"

    # Serving.

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != WEBCALL_PATH:
            _log.info("no such path: %s", redact(request.path))
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

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
        record = ConversationRecord(
            number=len(self._records) + 1,
            path=redact(request.path),
            origin=request.headers.get("Origin"),
        )
        self._records.append(record)
        task = asyncio.current_task()
        assert task is not None, "websockets runs each handler in a task"
        self._tasks.add(task)
        self._idle.clear()
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
