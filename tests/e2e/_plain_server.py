"""A BlackBox chat server written from PROTOCOL.md alone, on websockets and ``json``.

It imports neither ``blackbox_protocol`` nor ``blackbox_emulator`` (a test
checks it): a second implementation of the protocol, so that a client tested
against it and against the emulator is not only tested against our own reading
of the protocol twice over. Its conversation is scripted and deterministic:

- the path is ``/api/v1/ws/webCall`` (any other is HTTP 404); a missing or
  wrong ``token`` gets the error frame ``Missing token`` or ``Invalid token``
  and the close (1008, as the emulator and the transcripts use);
- ``initialize`` (``callType`` ``chat``; another call type is closed with 1007)
  gets ``event connection`` (``data.jobId``), ``event opened``, then the
  greeting ``"Hello! "`` ``"How can I help?"`` in two chunks 50 ms apart;
- ``incomingChatMessage`` X is echoed (``source`` ``user``); 100 ms later comes
  the reply ``"You said: X."`` in chunks 50 ms apart (``"You said: "``, X,
  ``"."``; no empty chunk when X is empty). When X contains ``weather`` the
  server first asks the client's ``get_weather`` tool (``{"city": "Paris"}``),
  waits 5 s at most for the answer, and replies ``"It is N degrees."``
  (``"It is "``, N, ``" degrees."``) with N the result's ``temperature``, or
  ``"The weather tool failed."`` / ``"The weather tool did not answer."``;
- ``terminate`` gets ``conversationResult`` ``{"status": "Completed",
  "errorMessage": null}`` and the close, 1000;
- what the live service refuses is closed with 1007: an ``incomingChatMessage``
  whose ``content`` is not a string, a ``websocketToolResponse`` without
  ``channelId``, a frame that is not a JSON object with a string ``type``;
- a second ``initialize`` gets ``Multiple init messages received``; none
  within 10 s, ``Init message not received``; a client silent for 60 s is closed
  (1001). Every frame sent carries ``timestamp`` (ISO 8601 UTC, milliseconds,
  ``Z``) and ``channelId: null``.

Messages are handled one at a time, in order: what the client sends during a
reply waits for the reply's end (a tool response is taken out of turn).
``plain_server`` serves it from a thread (``threaded_server``), so that asyncio,
trio and threaded clients can all use it. Each connection's frames are kept in
``PlainServer.transcripts``, shaped as the lines of
``shared/protocol/transcripts`` (``dir`` ``out`` is the client's).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final, NoReturn
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.e2e._threaded_server import threaded_server

__all__ = ["GREETING", "PATH", "PlainServer", "plain_server", "reply_to"]

PATH: Final = "/api/v1/ws/webCall"
#: The agent's first words, in chunks.
GREETING: Final = ("Hello! ", "How can I help?")
#: Seconds between chunks, and from the echo to the reply.
CHUNK_DELAY: Final = 0.05
REPLY_DELAY: Final = 0.1
#: Seconds the server waits for ``initialize``, for a tool's answer, for anything.
INIT_WAIT: Final = 10.0
TOOL_WAIT: Final = 5.0
IDLE_WAIT: Final = 60.0
#: The close after an error frame (PROTOCOL.md names none; the emulator uses 1008).
ERROR_CLOSE: Final = 1008
#: The live service's close for a frame that does not match its schema.
SCHEMA_CLOSE: Final = 1007

Frame = dict[str, Any]


def reply_to(text: str) -> tuple[str, ...]:
    """The chunks of the agent's reply to ``text`` when no tool is involved."""
    return tuple(chunk for chunk in ("You said: ", text, ".") if chunk)


class _Ended(Exception):
    """The conversation is over (the server closed the socket); unwind the handler."""


class PlainServer:
    """The server's state across connections; ``plain_server`` serves it.

    Args:
        token: the one token it accepts.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.url = ""
        """``ws://127.0.0.1:PORT``, once served."""
        self.transcripts: list[list[Frame]] = []
        """Each connection's frames, in order, as transcript lines."""
        self._job_ids = itertools.count(1)
        self._running = 0
        self._idle = threading.Condition()

    def __repr__(self) -> str:
        return f"<PlainServer {self.url or 'not serving'}>"  # never the token

    def finished(self, timeout: float = 5.0) -> list[list[Frame]]:
        """The transcripts once no conversation is running (waits ``timeout`` s at most).

        Raises:
            TimeoutError: a conversation still runs after ``timeout`` seconds.
        """
        with self._idle:
            if not self._idle.wait_for(lambda: self._running == 0, timeout):
                raise TimeoutError(f"{self._running} conversations still run")
        return list(self.transcripts)

    def check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        """websockets' ``process_request``: only the documented path opens a WebSocket."""
        if urlsplit(request.path).path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def handle(self, websocket: ServerConnection) -> None:
        """websockets' handler: one conversation on one connection."""
        transcript: list[Frame] = []
        with self._idle:
            self._running += 1
            self.transcripts.append(transcript)
        try:
            await _Conversation(self, websocket, transcript).run()
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def next_job_id(self) -> str:
        return f"plain-job-{next(self._job_ids)}"


class _Conversation:
    """One connection's conversation, as the module's docstring scripts it."""

    def __init__(self, server: PlainServer, websocket: ServerConnection, transcript: list[Frame]):
        self._server = server
        self._websocket = websocket
        self._transcript = transcript
        #: Messages that came while the server waited for a tool's answer.
        self._deferred: deque[Frame] = deque()
        self._tool_ids = itertools.count(1)

    async def run(self) -> None:
        try:
            await self._check_token()
            await self._open()
            while True:
                await self._handle(await self._next())
        except _Ended:
            pass
        except ConnectionClosed as closed:
            # The client closed first, or dropped the connection (no close frame: None).
            received = closed.rcvd
            self._transcript.append(
                {"dir": "close", "code": None if received is None else received.code}
            )

    async def _check_token(self) -> None:
        request = self._websocket.request
        assert request is not None, "the handshake is over"
        tokens = parse_qs(urlsplit(request.path).query).get("token")
        if not tokens:
            await self._refuse("Missing token")
        elif tokens[0] != self._server.token:
            await self._refuse("Invalid token")

    async def _open(self) -> None:
        first = await self._receive(INIT_WAIT)
        if first is None or first["type"] != "initialize":
            await self._refuse("Init message not received")
        request = first.get("request")
        call_type = request.get("callType") if isinstance(request, dict) else None
        if call_type != "chat":
            await self._close(SCHEMA_CLOSE, f"this server serves chat only, not {call_type!r}")
        await self._send("event", name="connection", data={"jobId": self._server.next_job_id()})
        await self._send("event", name="opened", data={})
        await self._say(GREETING)

    async def _next(self) -> Frame:
        if self._deferred:
            return self._deferred.popleft()
        message = await self._receive(IDLE_WAIT)
        if message is None:
            await self._close(1001, f"nothing received for {IDLE_WAIT:g} s")
        return message

    async def _handle(self, message: Frame) -> None:
        match message["type"]:
            case "incomingChatMessage":
                await self._reply(message["content"])
            case "terminate":
                await self._send(
                    "conversationResult", result={"status": "Completed", "errorMessage": None}
                )
                await self._close(1000, "")
            case "initialize":
                await self._refuse("Multiple init messages received")
            case _:
                pass  # an answer to no request, an sdpAnswer in a chat: nothing to do

    async def _reply(self, text: str) -> None:
        await self._send("text", content={"source": "user", "text": text})
        await asyncio.sleep(REPLY_DELAY)
        if "weather" in text:
            chunks = await self._ask_weather()
        else:
            chunks = reply_to(text)
        await self._say(chunks)

    async def _ask_weather(self) -> tuple[str, ...]:
        tool_id = f"tool-{next(self._tool_ids)}"
        await self._send(
            "websocketToolRequest",
            content={"id": tool_id, "toolName": "get_weather", "args": {"city": "Paris"}},
        )
        deadline = time.monotonic() + TOOL_WAIT
        while (left := deadline - time.monotonic()) > 0:
            message = await self._receive(left)
            if message is None:
                break
            if message["type"] == "websocketToolResponse" and message["content"]["id"] == tool_id:
                result = message["content"].get("result")
                temperature = result.get("temperature") if isinstance(result, dict) else None
                if isinstance(temperature, int | float) and not isinstance(temperature, bool):
                    return ("It is ", str(temperature), " degrees.")
                return ("The weather tool failed.",)
            self._deferred.append(message)
        return ("The weather tool did not answer.",)

    # The wire.

    async def _receive(self, timeout: float) -> Frame | None:
        """The client's next message, checked as the live service checks it; ``None``
        when nothing came within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                raw = await self._websocket.recv()
        except TimeoutError:
            return None
        if isinstance(raw, bytes):
            await self._close(SCHEMA_CLOSE, "binary frames are not part of the protocol")
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._close(SCHEMA_CLOSE, "a frame is a JSON object with a string type")
        self._transcript.append({"dir": "out", "frame": message})
        match message:
            case {"type": "incomingChatMessage", "content": str()}:
                pass
            case {"type": "incomingChatMessage"}:
                await self._close(SCHEMA_CLOSE, "incomingChatMessage content must be a string")
            case {"type": "websocketToolResponse", "channelId": _, "content": {"id": str()}}:
                pass
            case {"type": "websocketToolResponse"}:
                await self._close(
                    SCHEMA_CLOSE, "websocketToolResponse needs channelId and content.id"
                )
        return message

    async def _say(self, chunks: tuple[str, ...]) -> None:
        for number, chunk in enumerate(chunks):
            if number:
                await asyncio.sleep(CHUNK_DELAY)
            await self._send("text", content={"source": "assistant", "text": chunk})

    async def _send(self, kind: str, **payload: Any) -> None:
        frame = {"type": kind, "timestamp": _timestamp(), "channelId": None, **payload}
        self._transcript.append({"dir": "in", "frame": frame})
        await self._websocket.send(json.dumps(frame))

    async def _refuse(self, message: str) -> NoReturn:
        await self._send("error", data={"message": message})
        await self._close(ERROR_CLOSE, message)

    async def _close(self, code: int, reason: str) -> NoReturn:
        self._transcript.append({"dir": "close", "code": code})
        await self._websocket.close(code, reason)
        raise _Ended


def _timestamp() -> str:
    """Now, as the live service stamps frames: ``2026-06-10T09:00:00.412Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextmanager
def plain_server(token: str) -> Iterator[PlainServer]:
    """Serve a ``PlainServer`` accepting ``token`` on 127.0.0.1 from a thread; stop on exit."""
    server = PlainServer(token)
    with threaded_server(server.handle, process_request=server.check_path) as port:
        server.url = f"ws://127.0.0.1:{port}"
        yield server
