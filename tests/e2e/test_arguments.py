"""``connect()`` misused: ``LocalProtocolError`` before any connection is opened.

The server is a bare loopback listener: after each refusal the test checks
that nothing connected to it.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from blackbox_protocol import ConnectError, LocalProtocolError, Timeouts, connect

pytestmark = pytest.mark.anyio

TOKEN = "arguments-token"


async def handler(**args: Any) -> str:
    return "ok"


@pytest.fixture
def listener() -> Iterator[tuple[str, socket.socket]]:
    """A loopback TCP listener, as ``ws://`` URL and socket; it accepts nothing by itself."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield f"ws://127.0.0.1:{server.getsockname()[1]}", server


async def refused(server: str, **options: Any) -> str:
    """The message of the ``LocalProtocolError`` that ``connect(**options)`` raises at once."""
    with anyio.fail_after(5), pytest.raises(LocalProtocolError) as raised:
        async with connect(options.pop("token", TOKEN), server=server, **options):
            pass
    return str(raised.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tools": {"x": 5}}, "the tool 'x' must be callable (a function), not int"),
        ({"tools": [handler]}, "tools must map tool names to handlers, not list"),
        ({"tools": {"": handler}}, "a tool's name must be a non-empty string"),
        ({"tools": {1: handler}}, "a tool's name must be a non-empty string, not 1"),
        ({"additional_data": [1, 2]}, "additional_data must be a mapping with string keys"),
        ({"additional_data": {1: "a"}}, "additional_data must be a mapping with string keys"),
        ({"additional_data": {"x": object()}}, "cannot encode initialize"),
        ({"additional_data": {"x": math.nan}}, "cannot encode initialize"),
        ({"origin": "example.com"}, "an origin is scheme://host[:port]"),
        ({"origin": "https://a.example\r\nX-Evil: 1"}, "an origin is scheme://host[:port]"),
        ({"timeouts": {"open": 1}}, "timeouts must be a Timeouts, not dict"),
        ({"retry": 3}, "retry must be a Retry or None, not int"),
        ({"max_frame_size": 0}, "max_frame_size must be positive, not 0"),
        ({"max_frame_size": -1}, "max_frame_size must be positive"),
        ({"max_frame_size": 1.5}, "max_frame_size must be a whole number"),
        ({"phone": "+15550100"}, "phone= is for onPhone calls, not chat"),
        ({"call_type": "onPhone"}, "an onPhone call needs phone="),
        ({"call_type": "onPhone", "phone": ""}, "an onPhone call needs phone="),
        ({"call_type": "webCall"}, "a webCall needs media="),
        ({"call_type": "webCall", "media": "speaker"}, "media must be an AudioSession, not str"),
        ({"call_type": "video"}, "unknown call type 'video'"),
        ({"ssl_context": "default"}, "ssl_context must be an ssl.SSLContext, not str"),
        ({"token": 5}, "the token must be a string, not int"),
        ({"token": ""}, "the token is empty"),
        ({"unhandled_tools": "ignore"}, "unhandled_tools must be 'fail' or 'app', not 'ignore'"),
        ({"reply_pause": 0}, "reply_pause must be a positive number of seconds, not 0"),
        ({"reply_pause": math.inf}, "reply_pause must be a positive number of seconds, not inf"),
        ({"reply_pause": True}, "reply_pause must be a positive number of seconds, not True"),
    ],
    ids=lambda value: None if isinstance(value, str) else ",".join(value),
)
async def test_a_wrong_argument_fails_before_connecting(
    listener: tuple[str, socket.socket], options: dict[str, Any], message: str
) -> None:
    server, accepting = listener

    assert message in await refused(server, **options)
    with pytest.raises(BlockingIOError):
        accepting.accept()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a FileSession is asyncio-only
async def test_media_for_a_chat_is_refused(listener: tuple[str, socket.socket]) -> None:
    from blackbox_media_file import FileSession

    session = FileSession()  # no files: nothing to leave behind
    try:
        message = await refused(listener[0], media=session)
    finally:
        await session.close()

    assert message == "media= is for webCall calls, not chat (pass call_type='webCall')"
    with pytest.raises(BlockingIOError):
        listener[1].accept()


async def test_good_arguments_do_connect(listener: tuple[str, socket.socket]) -> None:
    # The other side of the checks above: these arguments pass, and the socket is
    # opened (the listener then hangs up, which is a ConnectError).
    server, accepting = listener

    async def attempt() -> None:
        with pytest.raises(ConnectError):
            async with connect(
                TOKEN,
                server=server,
                tools={"x": handler},
                additional_data={"user": "u-1", "n": 1},
                origin="https://app.example",
                max_frame_size=1024,
                timeouts=Timeouts(open=5),
            ):
                pass

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(attempt)
            while True:
                try:
                    connection, _ = accepting.accept()
                except BlockingIOError:
                    await anyio.sleep(0.05)
                else:
                    connection.close()
                    break
