"""TLS: certificates are verified by default; a custom context can trust a private CA."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme
from blackbox_protocol import (
    Connected,
    ConnectError,
    Event,
    InitializeReceived,
    ServerConnection,
    TerminateReceived,
    connect,
)
from websockets.asyncio.server import ServerConnection as WebSocket

from tests._transports import serve_conversation
from tests.e2e._threaded_server import threaded_server

pytestmark = pytest.mark.anyio


async def accept_then_end(websocket: WebSocket) -> None:
    """The smallest agent: accept the conversation, end it on terminate."""

    async def react(server: ServerConnection, event: Event) -> None:
        if isinstance(event, InitializeReceived):
            server.accept(job_id="tls-1", now=time.monotonic())
        elif isinstance(event, TerminateReceived):
            server.end(now=time.monotonic())

    await serve_conversation(websocket, react)


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
