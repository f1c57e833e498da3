"""The driver's call: a ``ClientConnection`` run over a real WebSocket, and its verbs.

It is thin on purpose. The protocol's rules, the turns included, live in the
sans-IO core; the loop that feeds it is ``driving.Driver``. This module acts
on the core's events (runs tool handlers, answers the offer with the media
backend, wakes those who wait for a reply) and owns the waits: keepalive,
terminate, close. It runs under asyncio and trio (anyio).
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final, Literal, TypeVar, cast

import anyio
import anyio.abc
from attrs import field, frozen

from blackbox_protocol._arguments import (
    check_count,
    check_delay,
    check_max_delay,
    every_field,
    positive_seconds,
)
from blackbox_protocol._codec import encode
from blackbox_protocol._endpoint import Endpoint
from blackbox_protocol._queue import EventQueue
from blackbox_protocol._tools import ToolContext, ToolHandler, call_handler, context_parameter
from blackbox_protocol._websocket import WebSocket
from blackbox_protocol.connection import ClientConnection, ConnectionState
from blackbox_protocol.driving import Driver
from blackbox_protocol.errors import (
    LocalProtocolError,
    MediaError,
    MediaNotConnected,
    NoReply,
    ReplyTimeout,
)
from blackbox_protocol.events import (
    ClientEvent,
    ConnectionClosed,
    ConversationFailed,
    Event,
    OfferReceived,
    ReplyEnded,
    ToolRequested,
    ToolTimedOut,
    UserTurnEnded,
)
from blackbox_protocol.media import AudioSession, MediaState
from blackbox_protocol.messages import CallType, ConversationResultData, Message
from blackbox_protocol.turns import USER, Reply, Turn

__all__ = ["Call", "EventHandler", "Retry", "Timeouts", "ToolHandler", "UnhandledTools"]

logger = logging.getLogger("blackbox_protocol")

E = TypeVar("E", bound=Event)

#: A callback for ``Call.on``: sync (called at once; keep it quick) or async (started as a task).
EventHandler = Callable[[E], None] | Callable[[E], Awaitable[None]]

#: What becomes of a tool request no handler is registered for: ``"fail"``
#: answers it with an error result at once; ``"app"`` leaves it to the app,
#: which answers from the ``ToolRequested`` event (``Call.reply_to_tool``)
#: within ``Timeouts.tool``.
UnhandledTools = Literal["fail", "app"]

#: The most replies kept unread for ``wait_for_reply`` (the oldest go first).
_UNREAD_REPLIES: Final = 64
#: The states in which no reply can come any more.
_OVER: Final = frozenset({ConnectionState.ENDED, ConnectionState.FAILED, ConnectionState.CLOSED})


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
    #: ``Call.ask`` and ``wait_for_reply``: the wait for a reply to end (``ReplyTimeout``).
    reply: float = 30.0
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


@frozen
class _EndedReply:
    """A reply as it ended, and what ended it."""

    reply: Reply
    #: Whether the echo of the text last sent cut it short: the agent was
    #: still finishing what it said before (a greeting), not answering.
    cut_by_echo: bool
    #: Whether the conversation's failure cut it short.
    failed: bool

    def answers(self, sent_at: float | None) -> bool:
        """Whether it answers what was sent at ``sent_at`` (any reply, when ``None``).

        It must start after the send, and not be cut short by its echo.
        """
        if sent_at is None:
            return True
        return self.reply.turn.started_at >= sent_at and not self.cut_by_echo


class Call:
    """A conversation in progress; made by ``connect()``.

    The verbs: ``ask`` (say something, get the agent's reply), ``send_text``,
    ``wait_for_reply``, ``terminate``, ``aclose``; ``transcript`` holds the
    turns so far. For everything else, the events: iterate the call
    (``async for event in call``, each a ``ClientEvent``), or register
    callbacks with ``on``. The iteration ends when the socket closes, and
    raises the typed error when the conversation fails
    (``AuthenticationError``, ``DisconnectedError``, ``ProtocolTimeout``, ...),
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
        tools: Mapping[str, ToolHandler],
        unhandled_tools: UnhandledTools,
        media: AudioSession | None,
        timeouts: Timeouts,
        clock: Callable[[], float],
        max_events: int,
    ) -> None:
        self._connection = connection
        self._websocket = websocket
        self._driver = Driver(connection, websocket, clock=clock)
        self._endpoint = endpoint
        self._tools = tools
        self._contexts = {name: context_parameter(handler) for name, handler in tools.items()}
        self._unhandled_tools = unhandled_tools
        self._media = media
        self._timeouts = timeouts
        self._events = EventQueue(max_events)
        self._handlers: list[tuple[type[Event], EventHandler[Any]]] = []
        self._changed = anyio.Event()
        self._closed = anyio.Event()
        self._closing = False
        self._tool_scopes: dict[str, anyio.CancelScope] = {}
        #: Replies ended and not yet returned by ``wait_for_reply``, oldest first.
        self._unread_replies: deque[_EndedReply] = deque(maxlen=_UNREAD_REPLIES)
        #: When the user's text was last sent (``send_text``), on the clock.
        self._sent_at: float | None = None
        #: The user's turns ended since then: the first to begin after it is its echo.
        self._user_turns_since_sent = 0
        #: Why the media ended the call, when it did: raised instead of the disconnection.
        self._media_error: MediaError | None = None
        self._offered = False
        self._media_connected = False
        self._task_group: anyio.abc.TaskGroup | None = None
        #: Stops the tasks of an awaited ``connect()`` (see ``_connect``).
        self._stop: Callable[[], Awaitable[None]] | None = None
        self._released = False

    def __repr__(self) -> str:
        kind = self.call_type.value if self.call_type else "call"
        return f"<Call {kind} to {self._endpoint.origin}, {self.state.value}>"

    @property
    def state(self) -> ConnectionState:
        """The conversation's state (see ``ConnectionState``)."""
        return self._connection.state

    @property
    def call_type(self) -> CallType | None:
        """The call's type: ``chat``, ``webCall`` or ``onPhone``."""
        return self._connection.call_type

    @property
    def conversation_id(self) -> str | None:
        """The service's id for this conversation (``jobId`` or ``recordId``)."""
        return self._connection.conversation_id

    @property
    def result(self) -> ConversationResultData | None:
        """The conversation's result, once it came."""
        return self._connection.result

    @property
    def transcript(self) -> tuple[Turn, ...]:
        """The turns that have ended so far, both sides, oldest first (see ``turns``)."""
        return self._connection.transcript

    @property
    def connection(self) -> ClientConnection:
        """The sans-IO core under the call: read its state; do not command it.

        An escape hatch, with ``send_raw``: commands sent to it directly would
        bypass the driver (nothing would send their frames).
        """
        return self._connection

    @property
    def media(self) -> AudioSession | None:
        """The voice call's media session, ``None`` for a chat."""
        return self._media

    # Events.

    def __aiter__(self) -> Call:
        return self

    async def __anext__(self) -> ClientEvent:
        event = await self._events.get()
        if isinstance(event, ConversationFailed):
            raise self._media_error or event.error
        if event is None or isinstance(event, ConnectionClosed):
            # A call its media ended closes cleanly (after terminate), yet it failed.
            if self._media_error is not None:
                raise self._media_error
            raise StopAsyncIteration
        return event

    async def next_event(self, *, timeout: float | None = None) -> ClientEvent | None:
        """The next event, as the iteration gives it; ``None`` once the call is over.

        Raises:
            TimeoutError: no event within ``timeout`` seconds.
            BlackBoxError: the conversation failed (as the iteration raises).
        """
        with anyio.fail_after(math.inf if timeout is None else timeout):
            try:
                return await self.__anext__()
            except StopAsyncIteration:
                return None

    def on(self, kind: type[E], handler: EventHandler[E]) -> Callable[[], None]:
        """Call ``handler`` with every event of ``kind`` (subclasses included), as it happens.

        Several handlers may watch the same kind, beside the iteration, which
        still gets every event. A sync handler is called at once, in the
        call's own task: keep it quick. An async one is started as a task. An
        exception in a handler is logged and does not end the call.

        Returns:
            A function that removes the handler.
        """
        entry: tuple[type[Event], EventHandler[Any]] = (kind, handler)
        self._handlers.append(entry)

        def remove() -> None:
            if entry in self._handlers:
                self._handlers.remove(entry)

        return remove

    # Verbs.

    async def send_text(self, text: str) -> None:
        """Send the user's chat text. A reply in progress ends (see ``turns``).

        Raises:
            BlackBoxError: the conversation failed (the typed error says why).
            LocalProtocolError: the conversation is over.
        """
        self._raise_failure()
        now = self._driver.now()
        self._connection.send_text(text, now=now)
        self._sent_at = now
        self._user_turns_since_sent = 0
        await self._after_input()

    async def ask(self, text: str, *, timeout: float | None = None) -> Reply:
        """Say ``text``, and wait for the agent's reply to it to end.

        The reply returned is the first to start after the text was sent and
        not to be cut short by its echo: a greeting still unread, or one still
        coming in when the text was sent, is skipped.

        Args:
            text: the user's chat text.
            timeout: seconds to wait for the reply to end; ``Timeouts.reply`` by default.

        Returns:
            The reply, with its latency from the send.

        Raises:
            ReplyTimeout: no reply ended in time (the conversation goes on).
            NoReply: the conversation ended first.
            BlackBoxError: the conversation failed (the typed error says why).
            LocalProtocolError: the conversation is over.
        """
        await self.send_text(text)
        return await self._next_reply(after=self._sent_at, timeout=timeout)

    async def wait_for_reply(self, *, timeout: float | None = None) -> Reply:
        """The agent's next reply not yet returned, once it has ended.

        The first call after connecting gives the greeting, if the agent
        greets; each next one the reply after it.

        Args:
            timeout: seconds to wait; ``Timeouts.reply`` by default.

        Raises:
            ReplyTimeout: no reply ended in time (the conversation goes on).
            NoReply: the conversation ended first.
            BlackBoxError: the conversation failed (the typed error says why).
        """
        return await self._next_reply(after=None, timeout=timeout)

    async def _next_reply(self, *, after: float | None, timeout: float | None) -> Reply:
        """The next unread reply; with ``after``, the first to answer what was sent then."""
        seconds = self._timeouts.reply if timeout is None else timeout
        with anyio.move_on_after(seconds):
            while True:
                while self._unread_replies:
                    ended = self._unread_replies.popleft()
                    if ended.failed:
                        # Cut short by the failure: not a reply, and nothing else can come.
                        break
                    if ended.answers(after):
                        return ended.reply
                if self.state in _OVER:
                    self._raise_failure()
                    raise NoReply("the conversation ended before the agent replied")
                await self._changed.wait()
        raise ReplyTimeout(seconds)

    async def reply_to_tool(self, tool_id: str, result: Any) -> None:
        """Answer the tool request ``tool_id`` (one the app was left to answer, typically).

        Raises:
            LocalProtocolError: no such request awaits a reply, or the result is not JSON.
        """
        self._connection.reply_to_tool(tool_id, result, now=self._driver.now())
        await self._after_input()

    async def fail_tool(self, tool_id: str, reason: str) -> None:
        """Answer the tool request ``tool_id`` with an error result, ``{"error": reason}``.

        Raises:
            LocalProtocolError: no such request awaits a reply.
        """
        self._connection.fail_tool(tool_id, reason, now=self._driver.now())
        await self._after_input()

    async def send_raw(self, message: Message | str) -> None:
        """Send a message past the core: an escape hatch for what the SDK does not know.

        The core's state does not change, and it checks nothing: the service
        may refuse what it does not expect (and close the socket). A
        ``Message`` is encoded (``timestamp`` and ``channelId`` added); a
        string is sent as it is.

        Raises:
            LocalProtocolError: the socket is closed.
        """
        frame = message if isinstance(message, str) else encode(message, now=time.time())
        try:
            await self._websocket.send(frame)
        except ConnectionError as exc:
            raise LocalProtocolError(f"cannot send: {exc}") from None

    # Voice.

    def interrupt(self) -> float:
        """Stop the agent's audio now: drop what is queued for playback, and the rest of it.

        The rest of the agent's utterance is dropped too, until its audio goes
        quiet (see the backend), so an interrupted reply does not resume. The
        conversation is not told: the agent goes on unless the caller speaks.

        Returns:
            The seconds of queued audio dropped.

        Raises:
            LocalProtocolError: not a voice call.
            MediaError: the backend cannot interrupt.
        """
        return self._voice("interrupt").interrupt()

    def mute(self) -> None:
        """Stop sending the caller's audio (silence goes instead); ``unmute`` resumes it.

        Raises:
            LocalProtocolError: not a voice call.
            MediaError: the backend cannot mute.
        """
        self._voice("mute").mute()

    def unmute(self) -> None:
        """Resume sending the caller's audio.

        Raises:
            LocalProtocolError: not a voice call.
            MediaError: the backend cannot mute.
        """
        self._voice("unmute").unmute()

    @property
    def muted(self) -> bool:
        """Whether the caller's audio is muted (``False`` in a chat)."""
        return self._media is not None and self._media.muted

    def _voice(self, verb: str) -> AudioSession:
        if self._media is None:
            kind = self.call_type.value if self.call_type else "call"
            raise LocalProtocolError(f"{verb}() is for voice calls, not a {kind}")
        return self._media

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
            self._connection.terminate(now=self._driver.now())
            await self._after_input()
        while self.state is ConnectionState.TERMINATING:
            await self._changed.wait()
        self._raise_failure()
        return self.result

    async def aclose(self) -> None:
        """End the call: terminate a live conversation, wait (bounded) for the close, release.

        The socket and the media are closed, and the unread events dropped.
        Idempotent. A call opened with ``async with connect(...)`` is closed
        so at the end of the block; one opened with ``await connect(...)``
        needs this (or ``async with call:``).
        """
        if not self._released:
            await self._finish()
        if self._stop is not None:
            await self._stop()
        with anyio.CancelScope(shield=True):
            await self._release()
        self._close_events()

    async def __aenter__(self) -> Call:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # Running.

    def _start(self, task_group: anyio.abc.TaskGroup) -> None:
        self._task_group = task_group
        task_group.start_soon(self._read)
        task_group.start_soon(
            self._websocket.keepalive, self._timeouts.ping_interval, self._timeouts.ping_timeout
        )

    async def _open(self, initialize: Callable[[float], None]) -> None:
        """Send ``initialize`` and step until the session is ready, or the call failed."""
        initialize(self._driver.now())
        self._dispatch(await self._driver.flush())
        while self.state is ConnectionState.AWAITING_SESSION:
            self._dispatch(await self._driver.step())
        self._raise_failure()

    async def _read(self) -> None:
        while self.state is not ConnectionState.CLOSED:
            self._dispatch(await self._driver.step())

    async def _after_input(self) -> None:
        """Send what a command queued, and act on its events."""
        self._dispatch(await self._driver.flush())

    def _dispatch(self, events: list[Event]) -> None:
        """Act on the core's events, queue them for the app, and wake the waiters."""
        for event in events:
            self._act_on(event)
            # A ClientConnection emits client events only.
            self._events.put(cast(ClientEvent, event))
            self._notify(event)
        if self.state in (ConnectionState.ENDED, ConnectionState.CLOSED):
            self._check_audio()
        # Before the call's tasks start (while opening), a failure is raised, not closed.
        if self._connection.should_close and not self._closing and self._task_group is not None:
            self._closing = True
            self._spawn(self._close_socket)
        if self.state is ConnectionState.CLOSED:
            self._closed.set()
            self._events.close()
        self._changed.set()
        self._changed = anyio.Event()

    def _act_on(self, event: Event) -> None:
        match event:
            case ReplyEnded(turn=turn):
                self._unread_replies.append(
                    _EndedReply(
                        Reply.of(turn, sent_at=self._sent_at),
                        cut_by_echo=self._cut_by_echo(),
                        failed=self._connection.error is not None,
                    )
                )
            case UserTurnEnded():
                self._user_turns_since_sent += 1
            case ToolRequested(name=name) if name in self._tools or self._unhandled_tools == "fail":
                self._spawn(self._run_tool, event)
            case ToolTimedOut(id=tool_id):
                scope = self._tool_scopes.pop(tool_id, None)
                if scope is not None:
                    scope.cancel()
            case OfferReceived(sdp=sdp):
                self._offered = True
                self._spawn(self._answer, sdp)

    def _cut_by_echo(self) -> bool:
        """Whether the reply that just ended was ended by the echo of the text last sent.

        Events come right after their input, so the turn open now is what ended
        the reply: the user's first turn to begin since the send is its echo.
        """
        current = self._connection.current_turn
        return (
            current is not None
            and current.source == USER
            and self._sent_at is not None
            and current.started_at >= self._sent_at
            and self._user_turns_since_sent == 0
        )

    def _notify(self, event: Event) -> None:
        for kind, handler in list(self._handlers):
            if not isinstance(event, kind):
                continue
            if inspect.iscoroutinefunction(handler):
                self._spawn(self._run_handler, handler, event)
                continue
            try:
                handler(event)
            except Exception:
                logger.exception("the handler %r of %s failed", handler, type(event).__name__)

    async def _run_handler(self, handler: Callable[[Event], Awaitable[None]], event: Event) -> None:
        try:
            await handler(event)
        except Exception:
            logger.exception("the handler %r of %s failed", handler, type(event).__name__)

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        assert self._task_group is not None, "started before any event needs a task"
        self._task_group.start_soon(function, *args)

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
                name = self._contexts.get(request.name)
                context = (
                    None if name is None else (name, ToolContext(request.id, request.name, self))
                )
                result = await call_handler(handler, request.args, context)
            except Exception as exc:
                logger.warning("tool %r failed: %s: %s", request.name, type(exc).__name__, exc)
                if request.id in self._connection.pending_tool_ids:
                    self._connection.fail_tool(
                        request.id, f"{type(exc).__name__}: {exc}", now=self._driver.now()
                    )
            else:
                # Not pending any more: the conversation ended while the tool ran.
                if request.id in self._connection.pending_tool_ids:
                    try:
                        self._connection.reply_to_tool(request.id, result, now=self._driver.now())
                    except LocalProtocolError as exc:  # the result is not JSON
                        self._connection.fail_tool(request.id, str(exc), now=self._driver.now())
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
        if self._connection.can_answer:
            self._connection.answer(answer, now=self._driver.now())
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

    async def _release(self) -> None:
        """Drop the socket and close the media: the call's tasks are over. Idempotent."""
        if self._released:
            return
        self._released = True
        await self._websocket.abort()
        if self._media is not None:
            await self._media.close()
        if self.state is not ConnectionState.CLOSED:
            # Left early (cancelled, or the block raised): the reader, cancelled,
            # never saw the close; the socket is gone all the same.
            websocket = self._websocket
            self._connection.receive_close(websocket.close_code, websocket.close_reason)
            self._closed.set()

    async def _finish(self) -> None:
        """Leave politely: terminate a live conversation and wait, bounded, for the close."""
        if self._connection.can_terminate:
            self._connection.terminate(now=self._driver.now())
            await self._after_input()
        bound = self._timeouts.terminate + self._timeouts.close
        with anyio.move_on_after(bound):
            await self._closed.wait()

    async def _abandon(self) -> None:
        """Leave now (cancelled, or the app raised): terminate if we can, close, drop."""
        if self._connection.can_terminate:
            self._connection.terminate(now=self._driver.now())
            with anyio.move_on_after(self._timeouts.close):
                await self._driver.flush()
        with anyio.move_on_after(self._timeouts.close):
            await self._websocket.close()
        await self._websocket.abort()
