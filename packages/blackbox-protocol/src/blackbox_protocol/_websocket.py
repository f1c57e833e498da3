"""A client WebSocket on any anyio byte stream, driving websockets' sans-IO protocol.

websockets' own asyncio client would tie us to asyncio; its sans-IO
``ClientProtocol`` over anyio streams runs under asyncio and trio alike. This
module is only the transport: bytes to WebSocket messages and back, keepalive
pings and the closing handshake. It knows nothing of BlackBox messages.
"""

from __future__ import annotations

import os
import ssl
from collections import deque
from typing import Final

import anyio
import anyio.abc
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin
from websockets.uri import parse_uri

from blackbox_protocol._endpoint import Endpoint, RedactingLogger
from blackbox_protocol.errors import ConnectError

__all__ = ["WebSocket"]

#: websockets' close code when no close frame came.
_ABNORMAL_CLOSURE: Final = 1006
#: Error classes that mean the network let us down.
_NETWORK_ERRORS: Final = (OSError, anyio.BrokenResourceError, anyio.EndOfStream)


class WebSocket:
    """One open client WebSocket. Only one task may call ``receive`` at a time."""

    def __init__(self, stream: anyio.abc.ByteStream, protocol: ClientProtocol) -> None:
        self._stream = stream
        self._protocol = protocol
        # Uncontended as a rule: taking it must not yield (each yield is a loop turn).
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._messages: deque[str | bytes] = deque()
        self._fragments: list[bytes] = []
        self._fragment_opcode = Opcode.TEXT
        self._pongs: dict[bytes, anyio.Event] = {}
        self._failure = ""

    @classmethod
    async def open(
        cls,
        endpoint: Endpoint,
        *,
        origin: str | None,
        ssl_context: ssl.SSLContext | None,
        max_size: int,
        timeout: float,
        logger: RedactingLogger,
    ) -> WebSocket:
        """Connect (TCP, TLS for ``wss``) and complete the opening handshake.

        Raises:
            ConnectError: the server cannot be reached, TLS fails (certificates are
                verified), the handshake is refused, or it all takes over ``timeout``.
        """
        where = endpoint.origin
        try:
            with anyio.fail_after(timeout):
                stream: anyio.abc.ByteStream
                if endpoint.secure:
                    stream = await anyio.connect_tcp(
                        endpoint.host,
                        endpoint.port,
                        ssl_context=ssl_context or ssl.create_default_context(),
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(endpoint.host, endpoint.port)
                protocol = ClientProtocol(
                    parse_uri(endpoint.uri),
                    origin=None if origin is None else Origin(origin),
                    max_size=max_size,
                    logger=logger,
                )
                websocket = cls(stream, protocol)
                try:
                    await websocket._handshake()
                except BaseException:
                    await anyio.aclose_forcefully(stream)
                    raise
        except TimeoutError:
            reason = f"timed out after {timeout:g} s"
            raise ConnectError(f"cannot connect to {where}: {reason}") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ConnectError(
                f"{where} refused the WebSocket: HTTP {status}", status=status
            ) from None
        except (InvalidHandshake, *_NETWORK_ERRORS) as exc:
            reason = str(exc) or type(exc).__name__
            if exc.__cause__ is not None:  # "did not receive a valid HTTP response": why
                reason += f": {exc.__cause__}"
            raise ConnectError(f"cannot connect to {where}: {endpoint.redact(reason)}") from None
        return websocket

    async def _handshake(self) -> None:
        self._protocol.send_request(self._protocol.connect())
        await self._flush()
        opened = False
        while not opened:
            try:
                data = await self._stream.receive()
            except anyio.EndOfStream:
                self._protocol.receive_eof()
            else:
                self._protocol.receive_data(data)
            # The server's first frames may share a read with its response: keep them.
            for event in self._protocol.events_received():
                if isinstance(event, Response):
                    opened = True
                else:
                    assert isinstance(event, Frame), "a server sends no request"
                    self._on_frame(event)
            # A refusal, or a response that is not HTTP (garbage, endless
            # headers, the end of the stream): no use reading on.
            if self._protocol.handshake_exc is not None:
                raise self._protocol.handshake_exc

    @property
    def close_code(self) -> int | None:
        """The peer's close code once closed; ``None`` when no close frame came."""
        received = self._protocol.close_rcvd
        return None if received is None else received.code

    @property
    def close_reason(self) -> str:
        """The peer's close reason, or why we gave up on the connection."""
        received = self._protocol.close_rcvd
        return self._failure if received is None else received.reason

    async def send_text(self, text: str) -> None:
        """Send one text message.

        Raises:
            anyio.BrokenResourceError: the connection is gone.
        """
        if self._protocol.state is not State.OPEN:
            raise anyio.BrokenResourceError("the WebSocket is closing")
        self._protocol.send_text(text.encode())
        await self._flush()

    async def send(self, frame: str) -> None:
        """``send_text``, as ``driving.Transport`` asks it.

        Raises:
            ConnectionError: the connection is gone.
        """
        try:
            await self.send_text(frame)
        except (*_NETWORK_ERRORS, anyio.ClosedResourceError) as exc:
            raise ConnectionError(f"the WebSocket is closed ({type(exc).__name__})") from exc

    async def receive(self) -> str | bytes | None:
        """The next message, or ``None`` once the connection has closed."""
        while not self._messages:
            if self._protocol.state is State.CLOSED:
                return None
            try:
                data = await self._stream.receive()
            except (*_NETWORK_ERRORS, anyio.ClosedResourceError):
                self._protocol.receive_eof()
            else:
                self._protocol.receive_data(data)
                if self._protocol.parser_exc is not None and not self._failure:
                    # We failed the connection (a frame too big, invalid): say why.
                    self._failure = str(self._protocol.parser_exc)
            for frame in self._protocol.events_received():
                assert isinstance(frame, Frame), "the handshake is over"
                self._on_frame(frame)
            try:
                await self._flush()
            except (*_NETWORK_ERRORS, anyio.ClosedResourceError):
                # The connection is gone (dropped, or aborted by the keepalive):
                # nothing more can be sent, and the next read reports the end.
                pass
        return self._messages.popleft()

    async def keepalive(self, interval: float, timeout: float) -> None:
        """Ping every ``interval`` seconds; no pong within ``timeout`` drops the connection."""
        while self._protocol.state is State.OPEN:
            await anyio.sleep(interval)
            payload = os.urandom(4)
            pong = self._pongs[payload] = anyio.Event()
            self._protocol.send_ping(payload)
            try:
                await self._flush()
            except (*_NETWORK_ERRORS, anyio.ClosedResourceError):
                return
            with anyio.move_on_after(timeout) as scope:
                await pong.wait()
            if scope.cancelled_caught:
                self._failure = f"no pong within {timeout:g} s"
                await self.abort()
                return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; ``receive`` returns ``None`` when it completes."""
        if self._protocol.state is State.OPEN:
            self._protocol.send_close(code, reason)
            try:
                await self._flush()
            except (*_NETWORK_ERRORS, anyio.ClosedResourceError):
                await self.abort()

    async def abort(self) -> None:
        """Close the TCP connection at once."""
        await anyio.aclose_forcefully(self._stream)

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PONG:
            pong = self._pongs.pop(bytes(frame.data), None)
            if pong is not None:
                pong.set()
        elif frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            if frame.opcode is not Opcode.CONT:
                self._fragment_opcode = frame.opcode
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments.clear()
                self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        if self._fragment_opcode is Opcode.BINARY:
            self._messages.append(data)
            return
        try:
            self._messages.append(data.decode())
        except UnicodeDecodeError:
            self._failure = "invalid UTF-8 in a text message"
            self._protocol.fail(1007, self._failure)

    async def _flush(self) -> None:
        async with self._send_lock:
            for data in self._protocol.data_to_send():
                if data:
                    await self._stream.send(data)
                elif not isinstance(self._stream, anyio.abc.SocketStream):
                    await anyio.aclose_forcefully(self._stream)
                else:
                    await self._stream.send_eof()
