"""The driver: ``connect()`` runs a ``ClientConnection`` over a real WebSocket.

It is thin on purpose. The protocol's rules live in the sans-IO core; this
module feeds it frames and the time, sends what it asks, runs tool handlers
and the media backend, and owns the waits: open, keepalive, terminate, close.
It runs under asyncio and trio (anyio).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
from attrs import field, frozen

from blackbox_protocol._arguments import (
    check_call,
    check_count,
    check_delay,
    check_max_delay,
    every_field,
    positive_seconds,
)
from blackbox_protocol._endpoint import DEFAULT_SERVER, Endpoint, RedactingLogger
from blackbox_protocol._queue import EventQueue
from blackbox_protocol._websocket import WebSocket
from blackbox_protocol.connection import DEFAULT_MAX_FRAME_SIZE, ClientConnection, ConnectionState
from blackbox_protocol.errors import (
    BlackBoxError,
    ConnectError,
    DisconnectedError,
    LocalProtocolError,
    MediaError,
    MediaNotConnected,
    ProtocolTimeout,
)
from blackbox_protocol.events import (
    ConnectionClosed,
    ConversationFailed,
    Event,
    OfferReceived,
    ToolRequested,
    ToolTimedOut,
)
from blackbox_protocol.media import AudioSession, MediaState
from blackbox_protocol.messages import CallType, ConversationResultData

__all__ = ["Call", "Retry", "Timeouts", "ToolHandler", "connect"]

logger = logging.getLogger("blackbox_protocol")

#: A tool: called with the request's ``args`` as keyword arguments; its return
#: value (any JSON) is the result. Sync handlers run in a worker thread.
ToolHandler = Callable[..., Any]


@frozen(field_transformer=every_field(positive_seconds))
class Timeouts:
    """Every wait of a call, in seconds. Each one that passes raises a typed error.

    Raises:
        TypeError: a wait is not a number.
        ValueError: a wait is not positive and finite (zero, negative, NaN, infinite).
    """

    #: TCP, TLS and the WebSocket handshake (``ConnectError``).
    open: float = 10.0
    #: ``initialize`` to ``event connection`` (``ProtocolTimeout``).
    session: float = 10.0
    #: Voice: ``event connection`` to the SDP offer (``ProtocolTimeout``).
    offer: float = 10.0
    #: Voice: our answer to the media reporting connected (``MediaNotConnected``).
    media: float = 10.0
    #: ``terminate`` to the conversation's result (``ProtocolTimeout``).
    terminate: float = 5.0
    #: Our close frame to the socket's end; then it is dropped.
    close: float = 5.0
    #: A tool handler's deadline; then an error result is sent for it.
    tool: float = 30.0
    #: Seconds between WebSocket pings, and the wait for each pong.
    ping_interval: float = 20.0
    ping_timeout: float = 20.0


@frozen
class Retry:
    """Reconnection before the conversation starts: ``attempts`` more tries, backing off.

    The delay starts at ``first_delay`` and doubles up to ``max_delay``
    (PROTOCOL.md: 1 s, 2 s, 4 s ... 30 s). Authentication, configuration and
    other service errors are never retried; nor is anything after the
    conversation started, since reconnecting starts a new conversation.

    Raises:
        TypeError: ``attempts`` is not an ``int``, or a delay not a number.
        ValueError: ``attempts`` is negative, a delay negative or not finite, or
            ``max_delay`` below ``first_delay``.
    """

    attempts: int = field(default=3, validator=check_count)
    first_delay: float = field(default=1.0, validator=check_delay)
    max_delay: float = field(default=30.0, validator=check_max_delay)

    def delay(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (0-based)."""
        return min(self.first_delay * 2.0**attempt, self.max_delay)


def _clock() -> Callable[[], float]:
    """POSIX seconds that never go backwards: wall time at the start, then monotonic."""
    offset = time.time() - time.monotonic()

    def now() -> float:
        return offset + time.monotonic()

    return now


class Call:
    """A conversation in progress; made by ``connect()``.

    Iterate it for events (``async for event in call``): the iteration ends
    when the socket closes, and raises the typed error when the conversation
    fails (``AuthenticationError``, ``DisconnectedError``, ``ProtocolTimeout``, ...),
    or when a voice call ended without its audio ever connecting
    (``MediaNotConnected``). Unread events are bounded (``connect(max_events=...)``):
    past the bound the oldest are dropped, and ``EventsDropped`` says how many.
    """

    def __init__(
        self,
        connection: ClientConnection,
        websocket: WebSocket,
        endpoint: Endpoint,
        *,
        call_type: CallType,
        tools: Mapping[str, ToolHandler],
        media: AudioSession | None,
        timeouts: Timeouts,
        clock: Callable[[], float],
        max_events: int,
    ) -> None:
        self._connection = connection
        self._websocket = websocket
        self._endpoint = endpoint
        self._call_type = call_type
        self._tools = tools
        self._media = media
        self._timeouts = timeouts
        self._clock = clock
        # Uncontended as a rule: taking it must not yield (each yield is a loop turn).
        self._send_lock = anyio.Lock(fast_acquire=True)
        self._events = EventQueue(max_events)
        self._changed = anyio.Event()
        self._closed = anyio.Event()
        self._closing = False
        self._tool_scopes: dict[str, anyio.CancelScope] = {}
        #: Why the media ended the call, when it did: raised instead of the disconnection.
        self._media_error: MediaError | None = None
        self._offered = False
        self._media_connected = False
        self._task_group: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return f"<Call {self._call_type.value} to {self._endpoint.origin}, {self.state.value}>"

    @property
    def state(self) -> ConnectionState:
        """The conversation's state (see ``ConnectionState``)."""
        return self._connection.state

    @property
    def conversation_id(self) -> str | None:
        """The service's id for this conversation (``jobId`` or ``recordId``)."""
        return self._connection.conversation_id

    @property
    def result(self) -> ConversationResultData | None:
        """The conversation's result, once it came."""
        return self._connection.result

    def __aiter__(self) -> Call:
        return self

    async def __anext__(self) -> Event:
        event = await self._events.get()
        if isinstance(event, ConversationFailed):
            raise self._media_error or event.error
        if event is None or isinstance(event, ConnectionClosed):
            # A call its media ended closes cleanly (after terminate), yet it failed.
            if self._media_error is not None:
                raise self._media_error
            raise StopAsyncIteration
        return event

    async def send_text(self, text: str) -> None:
        """Send the user's chat text.

        Raises:
            BlackBoxError: the conversation failed (the typed error says why).
            LocalProtocolError: the conversation is over.
        """
        self._raise_failure()
        self._connection.send_text(text, now=self._clock())
        await self._after_input()

    async def terminate(self) -> ConversationResultData | None:
        """End the conversation and wait (bounded) for its result.

        Returns:
            The result, or ``None`` when the server closed without one.

        Raises:
            ProtocolTimeout: no result within ``Timeouts.terminate``.
            MediaNotConnected: a voice call whose audio never connected (its
                result, if one came, is still ``result``).
            BlackBoxError: the conversation failed otherwise.
        """
        if self._connection.can_terminate:
            self._connection.terminate(now=self._clock())
            await self._after_input()
        while self.state is ConnectionState.TERMINATING:
            await self._changed.wait()
        self._raise_failure()
        return self.result

    # Running.

    def _start(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        task_group.start_soon(self._read)
        task_group.start_soon(self._run_timers)
        task_group.start_soon(
            self._websocket.keepalive, self._timeouts.ping_interval, self._timeouts.ping_timeout
        )

    async def _read(self) -> None:
        while (message := await self._websocket.receive()) is not None:
            self._connection.receive_frame(message, now=self._clock())
            await self._after_input()
        self._connection.receive_close(self._websocket.close_code, self._websocket.close_reason)
        await self._after_input()

    async def _run_timers(self) -> None:
        while not self._closed.is_set():
            deadline = self._connection.next_deadline()
            changed = self._changed
            with anyio.move_on_after(math.inf if deadline is None else deadline - self._clock()):
                await changed.wait()
                continue
            self._connection.handle_timer(now=self._clock())
            await self._after_input()

    async def _after_input(self) -> None:
        """Send what the core queued, act on its events, and wake the waiters."""
        await self._flush()
        for event in self._connection.events_received():
            self._act_on(event)
            self._events.put(event)
        if self.state in (ConnectionState.ENDED, ConnectionState.CLOSED):
            self._check_audio()
        if self.state in (ConnectionState.ENDED, ConnectionState.FAILED) and not self._closing:
            self._closing = True
            self._spawn(self._close_socket)
        if self.state is ConnectionState.CLOSED:
            self._closed.set()
            self._events.close()
        self._changed.set()
        self._changed = anyio.Event()

    def _act_on(self, event: Event) -> None:
        match event:
            case ToolRequested():
                self._spawn(self._run_tool, event)
            case ToolTimedOut(id=tool_id):
                scope = self._tool_scopes.pop(tool_id, None)
                if scope is not None:
                    scope.cancel()
            case OfferReceived(sdp=sdp):
                self._offered = True
                self._spawn(self._answer, sdp)

    def _spawn(self, function: Callable[..., Any], *args: Any) -> None:
        assert self._task_group is not None, "started before any event is handled"
        self._task_group.start_soon(function, *args)

    async def _flush(self) -> None:
        async with self._send_lock:
            for frame in self._connection.frames_to_send():
                try:
                    await self._websocket.send_text(frame)
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    # The reader sees the same end and reports it as a disconnection.
                    return

    def _raise_failure(self) -> None:
        error = self._media_error or self._connection.error
        if error is not None:
            raise error

    async def _close_socket(self) -> None:
        await self._websocket.close()
        with anyio.move_on_after(self._timeouts.close):
            await self._closed.wait()
            return
        await self._websocket.abort()

    async def _run_tool(self, request: ToolRequested) -> None:
        handler = self._tools.get(request.name)
        with anyio.CancelScope() as scope:
            self._tool_scopes[request.id] = scope
            try:
                if handler is None:
                    raise LookupError(f"no tool named {request.name!r} is registered")
                result = await _call_handler(handler, request.args)
            except Exception as exc:
                logger.warning("tool %r failed: %s: %s", request.name, type(exc).__name__, exc)
                if request.id in self._connection.pending_tool_ids:
                    self._connection.fail_tool(
                        request.id, f"{type(exc).__name__}: {exc}", now=self._clock()
                    )
            else:
                # Not pending any more: the conversation ended while the tool ran.
                if request.id in self._connection.pending_tool_ids:
                    try:
                        self._connection.reply_to_tool(request.id, result, now=self._clock())
                    except LocalProtocolError as exc:  # the result is not JSON
                        self._connection.fail_tool(request.id, str(exc), now=self._clock())
            finally:
                self._tool_scopes.pop(request.id, None)
        if not scope.cancelled_caught:
            await self._after_input()

    async def _answer(self, offer: str) -> None:
        assert self._media is not None, "connect() requires media for a webCall"
        try:
            answer = await self._media.answer(offer)
        except MediaError as exc:
            await self._media_failed(exc)
            return
        if self.state is ConnectionState.ANSWERING:
            self._connection.answer(answer, now=self._clock())
            await self._after_input()
            self._spawn(self._watch_media)

    async def _watch_media(self) -> None:
        """End the call if its audio is not connected within ``Timeouts.media``, or fails."""
        assert self._media is not None, "only a webCall answers"
        failure: MediaError | None = None
        with anyio.move_on_after(self._timeouts.media) as waiting:
            async for state in self._media.state_changes():
                if state is MediaState.CONNECTED:
                    self._media_connected = True
                    waiting.deadline = math.inf
                elif state is MediaState.FAILED:
                    failure = self._media.failure or MediaError("the audio connection failed")
                    break
        if waiting.cancelled_caught and not self._closing:
            seconds = self._timeouts.media
            failure = MediaNotConnected(
                f"the audio did not connect within {seconds:g} s of the answer", seconds=seconds
            )
        if failure is not None:
            await self._media_failed(failure)

    def _check_audio(self) -> None:
        """A voice call that ended without its audio ever connecting did not take place."""
        if (
            self._media is None
            or self._media_connected
            # The watcher may not have seen it yet.
            or self._media.state is MediaState.CONNECTED
            or self._media_error is not None
            or self._connection.error is not None
        ):
            return
        if self._offered:
            reason = "the call ended before its audio connected"
        else:
            reason = "the call ended before the service offered its audio (no sdpInvite came)"
        self._media_error = MediaNotConnected(reason)

    async def _media_failed(self, error: MediaError) -> None:
        """The call cannot go on without its audio: end it, and report this error."""
        logger.warning("ending the call: %s", error)
        self._media_error = error
        await self._abandon()

    def _close_events(self) -> None:
        """Release the event queue; iterating afterwards just ends."""
        self._events.discard()

    async def _finish(self) -> None:
        """Leave politely: terminate a live conversation and wait, bounded, for the close."""
        if self._connection.can_terminate:
            self._connection.terminate(now=self._clock())
            await self._after_input()
        bound = self._timeouts.terminate + self._timeouts.close
        with anyio.move_on_after(bound):
            await self._closed.wait()

    async def _abandon(self) -> None:
        """Leave now (cancelled, or the app raised): terminate if we can, close, drop."""
        if self._connection.can_terminate:
            self._connection.terminate(now=self._clock())
            with anyio.move_on_after(self._timeouts.close):
                await self._flush()
        with anyio.move_on_after(self._timeouts.close):
            await self._websocket.close()
        await self._websocket.abort()


async def _call_handler(handler: ToolHandler, args: Mapping[str, Any]) -> Any:
    if inspect.iscoroutinefunction(handler):
        return await handler(**args)
    result = await anyio.to_thread.run_sync(
        functools.partial(handler, **args), abandon_on_cancel=True
    )
    return await result if inspect.isawaitable(result) else result


async def _establish(
    endpoint: Endpoint,
    *,
    call_type: CallType,
    additional_data: Mapping[str, Any] | None,
    phone: str | None,
    origin: str | None,
    ssl_context: ssl.SSLContext | None,
    max_frame_size: int,
    timeouts: Timeouts,
    tools: Mapping[str, ToolHandler],
    media: AudioSession | None,
    max_events: int,
) -> Call:
    """Open the socket, send ``initialize`` and read until ``event connection`` (or failure)."""
    clock = _clock()
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
    )
    call = Call(
        connection,
        websocket,
        endpoint,
        call_type=call_type,
        tools=tools,
        media=media,
        timeouts=timeouts,
        clock=clock,
        max_events=max_events,
    )
    try:
        connection.initialize(
            call_type, additional_data=additional_data, endpoint=phone, now=clock()
        )
        await call._flush()
        while connection.state is ConnectionState.AWAITING_SESSION:
            deadline = connection.next_deadline()
            assert deadline is not None, "awaiting the session has a deadline"
            with anyio.move_on_after(deadline - clock()):
                message = await websocket.receive()
                if message is None:
                    connection.receive_close(websocket.close_code, websocket.close_reason)
                else:
                    connection.receive_frame(message, now=clock())
            connection.handle_timer(now=clock())
            await call._flush()
            for event in connection.events_received():
                call._events.put(event)
        call._raise_failure()
    except BaseException:
        call._close_events()
        with anyio.CancelScope(shield=True):
            await websocket.abort()
        raise
    return call


def _retryable(error: BlackBoxError) -> bool:
    if isinstance(error, ConnectError):
        return error.status is None or error.status >= 500
    return isinstance(error, DisconnectedError | ProtocolTimeout)


@asynccontextmanager
async def connect(
    token: str,
    *,
    call_type: CallType | str = CallType.CHAT,
    server: str = DEFAULT_SERVER,
    media: AudioSession | None = None,
    tools: Mapping[str, ToolHandler] | None = None,
    additional_data: Mapping[str, Any] | None = None,
    origin: str | None = None,
    phone: str | None = None,
    allow_insecure: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    max_events: int = 1000,
    timeouts: Timeouts = Timeouts(),
    retry: Retry | None = None,
) -> AsyncIterator[Call]:
    """Start a conversation with a BlackBox agent.

    The block is entered once the agent's session is ready (``event
    connection``); leaving it terminates a live conversation and closes the
    socket, each wait bounded. Cancellation (or Ctrl-C) sends ``terminate``
    when it still can and closes the socket.

    Args:
        token: the web-integration token. It is never logged or shown.
        call_type: ``chat``, ``webCall`` (needs ``media``) or ``onPhone`` (needs ``phone``).
        server: ``wss://host[:port]``: the production service by default, the
            other region (``RU_SERVER``), or a local emulator (``ws://`` is
            allowed on loopback only, unless ``allow_insecure``).
        media: the ``AudioSession`` that answers the offer of a ``webCall``.
        tools: tool handlers by name; see ``ToolHandler``.
        additional_data: free-form data handed to the agent.
        origin: an ``Origin`` header, for integrations that restrict origins.
        phone: the number the server dials, for ``onPhone``.
        allow_insecure: allow ``ws://`` to a host that is not this machine.
        ssl_context: TLS settings; by default the system's, with verification.
        max_frame_size: the longest frame accepted, in characters.
        max_events: how many unread events the call keeps; past it the oldest
            are dropped and an ``EventsDropped`` says how many (the events that
            end the call are always kept).
        timeouts: every wait's bound.
        retry: reconnect on transport failures before the conversation starts.

    Raises:
        AuthenticationError: the token is missing, unknown or expired.
        ConfigurationError: the integration is disabled or refuses the origin.
        ConnectError: the server cannot be reached or refused the WebSocket.
        ProtocolTimeout: no ``event connection`` in time.
        DisconnectedError: the socket closed before the session was ready.
        LocalProtocolError: bad arguments, before any I/O: the server URL, the
            token, the call type, media missing (``webCall``) or given (other
            calls), a tool that is not callable, ``additional_data`` that is not
            a JSON object, ``phone`` missing (``onPhone``) or given (other
            calls), an ``origin`` that is not ``scheme://host[:port]``, a
            ``timeouts`` or ``retry`` of the wrong type, a ``max_frame_size``
            or ``max_events`` below 1.
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
    )
    if not isinstance(timeouts, Timeouts):
        raise LocalProtocolError(f"timeouts must be a Timeouts, not {type(timeouts).__name__}")
    if retry is not None and not isinstance(retry, Retry):
        raise LocalProtocolError(f"retry must be a Retry or None, not {type(retry).__name__}")
    attempt = 0
    while True:
        try:
            call = await _establish(
                endpoint,
                call_type=kind,
                additional_data=additional_data,
                phone=phone,
                origin=origin,
                ssl_context=ssl_context,
                max_frame_size=max_frame_size,
                timeouts=timeouts,
                tools=dict(tools or {}),
                media=media,
                max_events=max_events,
            )
            break
        except BlackBoxError as exc:
            if retry is None or attempt >= retry.attempts or not _retryable(exc):
                raise
            delay = retry.delay(attempt)
            logger.info("connecting failed (%s); retrying in %g s", exc, delay)
            await anyio.sleep(delay)
            attempt += 1
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
            await call._websocket.abort()
            if media is not None:
                await media.close()
        if call.state is not ConnectionState.CLOSED:
            # Left early (cancelled, or the block raised): the reader, cancelled,
            # never saw the close; the socket is gone all the same.
            websocket = call._websocket
            call._connection.receive_close(websocket.close_code, websocket.close_reason)
