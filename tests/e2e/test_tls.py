"""TLS: certificates are verified by default; a custom context can trust a private CA."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme
from blackbox_protocol import (
    Connected,
    ConnectError,
    ConnectionState,
    InitializeReceived,
    ServerConnection,
    TerminateReceived,
    connect,
)
from blackbox_protocol.driving import Driver
from websockets.asyncio.server import ServerConnection as WebSocket

from tests._transports import AsyncSocket
from tests.e2e._threaded_server import threaded_server

pytestmark = pytest.mark.anyio


async def accept_then_end(websocket: WebSocket) -> None:
    """The smallest agent: accept the conversation, end it on terminate."""
    server = ServerConnection(now=time.monotonic(), wall_clock=time.time)
    driver = Driver(server, AsyncSocket(websocket, []))
    while server.state is not ConnectionState.CLOSED:
        for event in await driver.step():
            if isinstance(event, InitializeReceived):
                server.accept(job_id="tls-1", now=driver.now())
            elif isinstance(event, TerminateReceived):
                server.end(now=driver.now())
        await driver.flush()
        if server.should_close:
            await websocket.close()


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_port(authority: trustme.CA) -> object:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with threaded_server(accept_then_end, ssl_context=context) as port:
        yield port


async def test_an_untrusted_certificate_is_refused(tls_port: int) -> None:
    with pytest.raises(ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        async with connect("token", server=f"wss://127.0.0.1:{tls_port}"):
            pass


async def test_a_context_trusting_the_authority_connects(
    tls_port: int, authority: trustme.CA
) -> None:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    async with connect("token", server=f"wss://127.0.0.1:{tls_port}", ssl_context=context) as call:
        assert call.conversation_id == "tls-1"
        first = await call.__anext__()
        assert isinstance(first, Connected)
        result = await call.terminate()
    assert result is not None
    assert result.status == "Completed"
