"""``connect()``: open a call, as ``async with connect(...)`` or ``call = await connect(...)``.

As websockets' ``connect`` does, one function serves both styles. In a block
the call's tasks run in a task group of the caller's (structured: leaving
the block ends them, and errors surface there). Awaited, they run in a task
of their own until ``Call.aclose``, or until the socket closes: the style of
scripts, notebooks, and ``blackbox_protocol.sync``.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import sniffio

from blackbox_protocol._arguments import check_call
from blackbox_protocol._call import Call, Retry, Timeouts, UnhandledTools
from blackbox_protocol._endpoint import DEFAULT_SERVER, Endpoint, RedactingLogger
from blackbox_protocol._tools import ToolHandler
from blackbox_protocol._websocket import WebSocket
from blackbox_protocol.connection import DEFAULT_MAX_FRAME_SIZE, ClientConnection
from blackbox_protocol.errors import BlackBoxError, LocalProtocolError
from blackbox_protocol.media import AudioSession
from blackbox_protocol.messages import CallType
from blackbox_protocol.turns import DEFAULT_REPLY_PAUSE

__all__ = ["Connecting", "connect"]

logger = logging.getLogger("blackbox_protocol")

#: The tasks of awaited calls, kept referenced while they run (asyncio keeps only weak ones).
_DETACHED: set[Any] = set()


def connect(
    token: str,
    *,
    call_type: CallType | str = CallType.CHAT,
    server: str = DEFAULT_SERVER,
    media: AudioSession | None = None,
    tools: Mapping[str, ToolHandler] | None = None,
    unhandled_tools: UnhandledTools = "fail",
    additional_data: Mapping[str, Any] | None = None,
    origin: str | None = None,
    phone: str | None = None,
    allow_insecure: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_events: int = 1000,
    reply_pause: float = DEFAULT_REPLY_PAUSE,
    timeouts: Timeouts = Timeouts(),
    retry: Retry | None = None,
) -> Connecting:
    """Start a conversation with a BlackBox agent.

    Use it as ``async with connect(...) as call:`` (the block is entered once
    the agent's session is ready; leaving it terminates a live conversation
    and closes the socket, each wait bounded), or as ``call = await
    connect(...)`` and later ``await call.aclose()``. Cancellation (or
    Ctrl-C) sends ``terminate`` when it still can and closes the socket.

    The arguments are checked at once, before any I/O.

    Args:
        token: the web-integration token. It is never logged or shown.
        call_type: ``chat``, ``webCall`` (needs ``media``) or ``onPhone`` (needs ``phone``).
        server: ``wss://host[:port]``: the production service by default, the
            other region (``RU_SERVER``), or a local emulator (``ws://`` is
            allowed on loopback only, unless ``allow_insecure``).
        media: the ``AudioSession`` that answers the offer of a ``webCall``.
        tools: tool handlers by name; see ``ToolHandler`` and ``ToolContext``.
        unhandled_tools: ``"fail"`` answers a request for a tool that has no
            handler with an error result at once; ``"app"`` leaves it to the
            app (``Call.reply_to_tool`` from the ``ToolRequested`` event).
        additional_data: free-form data handed to the agent.
        origin: an ``Origin`` header, for integrations that restrict origins.
        phone: the number the server dials, for ``onPhone``.
        allow_insecure: allow ``ws://`` to a host that is not this machine.
        ssl_context: TLS settings; by default the system's, with verification.
        max_frame_size: the longest frame accepted, in characters.
        max_events: how many unread events the call keeps; past it the oldest
            are dropped and an ``EventsDropped`` says how many (the events that
            end the call are always kept).
        reply_pause: seconds of the agent's silence that end its reply (see
            ``blackbox_protocol.turns``).
        timeouts: every wait's bound.
        retry: reconnect on transport failures before the conversation starts.

    Raises:
        AuthenticationError: the token is missing, unknown or expired.
        ConfigurationError: the integration is disabled or refuses the origin.
        ConnectError: the server cannot be reached or refused the WebSocket.
        ProtocolTimeout: no ``event connection`` in time.
        DisconnectedError: the socket closed before the session was ready.
        LocalProtocolError: bad arguments, at once: the server URL, the
            token, the call type, media missing (``webCall``) or given (other
            calls), a tool that is not callable, ``additional_data`` that is not
            a JSON object, ``phone`` missing (``onPhone``) or given (other
            calls), an ``origin`` that is not ``scheme://host[:port]``, a
            ``timeouts`` or ``retry`` of the wrong type, a ``max_frame_size``
            or ``max_events`` below 1, a ``reply_pause`` that is not positive.
    """
    endpoint = Endpoint.parse(server, token, allow_insecure=allow_insecure)
    kind = check_call(
        call_type,
        media=media,
        tools=tools,
        additional_data=additional_data,
        origin=origin,
        phone=phone,
        ssl_context=ssl_context,
        max_frame_size=max_frame_size,
        max_events=max_events,
        unhandled_tools=unhandled_tools,
        reply_pause=reply_pause,
    )
    if not isinstance(timeouts, Timeouts):
        raise LocalProtocolError(f"timeouts must be a Timeouts, not {type(timeouts).__name__}")
    if retry is not None and not isinstance(retry, Retry):
        raise LocalProtocolError(f"retry must be a Retry or None, not {type(retry).__name__}")
    handlers = dict(tools or {})

    async def open_once() -> Call:
        websocket = await WebSocket.open(
            endpoint,
            origin=origin,
            ssl_context=ssl_context,
            # Room for the core's own limit in characters, as UTF-8 bytes.
            max_size=4 * max_frame_size,
            timeout=timeouts.open,
            logger=RedactingLogger(logging.getLogger("blackbox_protocol.websocket"), endpoint),
        )
        connection = ClientConnection(
            session_timeout=timeouts.session,
            offer_timeout=timeouts.offer,
            terminate_timeout=timeouts.terminate,
            tool_timeout=timeouts.tool,
            max_frame_size=max_frame_size,
            reply_pause=reply_pause,
            wall_clock=time.time,
        )
        call = Call(
            connection,
            websocket,
            endpoint,
            tools=handlers,
            unhandled_tools=unhandled_tools,
            media=media,
            timeouts=timeouts,
            clock=time.monotonic,
            max_events=max_events,
        )

        def initialize(now: float) -> None:
            connection.initialize(kind, additional_data=additional_data, endpoint=phone, now=now)

        try:
            await call._open(initialize)
        except BaseException:
            # The socket goes; the media stays open: a retry answers with it.
            call._close_events()
            with anyio.CancelScope(shield=True):
                await websocket.abort()
            raise
        return call

    async def open_call() -> Call:
        attempt = 0
        while True:
            try:
                return await open_once()
            except BlackBoxError as exc:
                if retry is None or attempt >= retry.attempts or not exc.retryable:
                    raise
                delay = retry.delay(attempt)
                logger.info("connecting failed (%s); retrying in %g s", exc, delay)
                await anyio.sleep(delay)
                attempt += 1

    return Connecting(open_call)


class Connecting:
    """What ``connect()`` returns: await it, or enter it with ``async with``."""

    def __init__(self, open_call: Callable[[], Awaitable[Call]]) -> None:
        self._open_call = open_call
        self._block: AbstractAsyncContextManager[Call] | None = None

    def __await__(self) -> Generator[Any, None, Call]:
        return self._detached().__await__()

    async def __aenter__(self) -> Call:
        if self._block is not None:
            raise LocalProtocolError("this connect() was entered already: call connect() again")
        self._block = _in_block(await self._open_call())
        return await self._block.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._block is not None, "entered first"
        return await self._block.__aexit__(exc_type, exc, traceback)

    async def _detached(self) -> Call:
        call = await self._open_call()
        _run_detached(call)
        return call


@asynccontextmanager
async def _in_block(call: Call) -> AsyncIterator[Call]:
    """Run the call's tasks in the caller's task group while the block runs."""
    raised: BaseException | None = None
    try:
        async with anyio.create_task_group() as task_group:
            call._start(task_group)
            try:
                yield call
            except BaseException as exc:
                raised = exc
                with anyio.CancelScope(shield=True):
                    await call._abandon()
                raise
            else:
                await call._finish()
            finally:
                task_group.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The task group wraps what the block raised: give the app the typed
        # error (``except DisconnectedError``) rather than a group of one.
        if raised is not None and group.exceptions == (raised,):
            raise raised from raised.__cause__
        raise
    finally:
        call._close_events()
        with anyio.CancelScope(shield=True):
            await call._release()


def _run_detached(call: Call) -> None:
    """Run the call's tasks in a task of their own, until the socket closes or ``aclose``."""
    scope = anyio.CancelScope()
    stopped = anyio.Event()

    async def run() -> None:
        try:
            with scope:
                async with anyio.create_task_group() as task_group:
                    call._start(task_group)
                    await call._closed.wait()
                    task_group.cancel_scope.cancel()
        except Exception:  # the call's own tasks handle their errors: this is a bug
            logger.exception("the call's tasks failed")
        finally:
            with anyio.CancelScope(shield=True):
                await call._release()
            stopped.set()

    async def stop() -> None:
        scope.cancel()
        await stopped.wait()

    call._stop = stop
    _spawn_system_task(run)


def _spawn_system_task(function: Callable[[], Awaitable[None]]) -> None:
    """Start ``function`` outside the caller's task tree, on the running event loop.

    anyio has no such thing (structured concurrency forbids it); both of its
    backends do: asyncio's plain tasks, trio's system tasks.
    """
    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(function)
        return
    import asyncio  # noqa: TID251 -- the asyncio backend's own way to start a task

    async def run() -> None:
        await function()

    task = asyncio.get_running_loop().create_task(run())
    _DETACHED.add(task)
    task.add_done_callback(_DETACHED.discard)
