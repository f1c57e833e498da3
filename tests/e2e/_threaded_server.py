"""Servers on their own asyncio loop in a thread, for tests on any backend.

``threaded_server`` serves WebSockets (websockets' asyncio server);
``threaded_tcp_server`` serves raw TCP, for peers that never get as far as a
WebSocket (a handshake that never ends).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

__all__ = ["Handler", "StreamHandler", "threaded_server", "threaded_tcp_server"]

Handler = Callable[[ServerConnection], Awaitable[None]]
StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextmanager
def threaded_server(
    handler: Handler, *, ssl_context: ssl.SSLContext | None = None, **options: Any
) -> Iterator[int]:
    """Serve ``handler`` on 127.0.0.1; yield the port; stop (bounded) on exit.

    ``options`` go to websockets' ``serve`` (``process_request``, ``max_size``...).
    """

    @asynccontextmanager
    async def listening() -> AsyncIterator[int]:
        async with serve(handler, "127.0.0.1", 0, ssl=ssl_context, **options) as server:
            yield server.sockets[0].getsockname()[1]

    with _in_thread(listening) as port:
        yield port


@contextmanager
def threaded_tcp_server(handler: StreamHandler) -> Iterator[int]:
    """Serve raw TCP with ``handler`` on 127.0.0.1; yield the port; stop (bounded) on exit."""

    @asynccontextmanager
    async def listening() -> AsyncIterator[int]:
        running: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

        async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None, "asyncio runs each connection in a task"
            running[task] = writer
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the client went away, as clients of such servers do
            finally:
                del running[task]
                writer.close()

        server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
        async with server:
            yield server.sockets[0].getsockname()[1]
            # A handler that would wait for ever must not outlive the server.
            for writer in running.values():
                writer.transport.abort()
            if running:
                await asyncio.wait(list(running), timeout=5)

    with _in_thread(listening) as port:
        yield port


@contextmanager
def _in_thread(listening: Callable[[], AbstractAsyncContextManager[int]]) -> Iterator[int]:
    """Run ``listening`` on a new loop in a thread until the block ends; yield its port."""
    ready = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def run() -> None:
        async with listening() as bound:
            port.append(bound)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the test server did not start"
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
