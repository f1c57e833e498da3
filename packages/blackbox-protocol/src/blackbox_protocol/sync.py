"""The sync API: the same calls without ``await``, for scripts, notebooks and threaded servers.

    from blackbox_protocol.sync import connect

    with connect(token) as call:
        print(call.ask("Hello!").text)

Each call runs the async driver (``blackbox_protocol.connect``) on an event
loop of its own, in a thread, through an anyio blocking portal; each verb
here waits for its async twin there. So the protocol, the turns, the tool
handlers and the media are the async API's own, not a second driver: the two
cannot drift apart. The loop is asyncio's, which the aiortc and file media
backends need. (websockets' sync client was the other choice: it would need
a second driving loop, threads for the timers, and no aiortc.)

The verbs are thread-safe: several threads may use one call. Event handlers
(``on``) and sync tool handlers run in the call's threads, not the caller's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio.from_thread

from blackbox_protocol import _call
from blackbox_protocol._connect import connect as connect_async
from blackbox_protocol.connection import ClientConnection, ConnectionState
from blackbox_protocol.errors import LocalProtocolError
from blackbox_protocol.events import ClientEvent, Event
from blackbox_protocol.media import AudioSession
from blackbox_protocol.messages import CallType, ConversationResultData, Message
from blackbox_protocol.turns import Reply, Turn

__all__ = ["Call", "connect"]

E = TypeVar("E", bound=Event)
T = TypeVar("T")


def connect(token: str, **options: Any) -> Call:
    """Start a conversation, and return once the agent's session is ready.

    Takes the arguments of ``blackbox_protocol.connect`` (``call_type``,
    ``server``, ``media``, ``tools``, ``timeouts``, ...), checked at once.
    Use the call as a context manager, or ``close()`` it.

    Raises:
        BlackBoxError: what ``blackbox_protocol.connect`` raises.
    """
    connecting = connect_async(token, **options)
    stack = contextlib.ExitStack()
    portal = stack.enter_context(anyio.from_thread.start_blocking_portal("asyncio"))
    try:
        call = portal.call(_awaited, connecting)
    except BaseException:
        stack.close()
        raise
    return Call(call, portal, stack)


async def _awaited(connecting: Any) -> _call.Call:
    call: _call.Call = await connecting
    return call


class Call:
    """A conversation in progress, with blocking verbs; made by ``connect()``.

    Iterate it for its events (``for event in call``) until the socket
    closes, or take them one by one with ``next_event(timeout=...)``. The
    errors are the async API's.
    """

    def __init__(
        self,
        call: _call.Call,
        portal: anyio.from_thread.BlockingPortal,
        stack: contextlib.ExitStack,
    ) -> None:
        self._call = call
        self._portal = portal
        self._stack = stack
        self._closed = False

    def __repr__(self) -> str:
        return repr(self._call)

    def __enter__(self) -> Call:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # What the call knows (read from any thread).

    @property
    def state(self) -> ConnectionState:
        """The conversation's state."""
        return self._call.state

    @property
    def call_type(self) -> CallType | None:
        """The call's type."""
        return self._call.call_type

    @property
    def conversation_id(self) -> str | None:
        """The service's id for this conversation."""
        return self._call.conversation_id

    @property
    def result(self) -> ConversationResultData | None:
        """The conversation's result, once it came."""
        return self._call.result

    @property
    def transcript(self) -> tuple[Turn, ...]:
        """The turns that have ended so far, oldest first."""
        return self._call.transcript

    @property
    def connection(self) -> ClientConnection:
        """The sans-IO core: read it, do not command it (see ``send_raw``)."""
        return self._call.connection

    @property
    def media(self) -> AudioSession | None:
        """The voice call's media session."""
        return self._call.media

    # Verbs.

    def ask(self, text: str, *, timeout: float | None = None) -> Reply:
        """Say ``text`` and return the agent's reply once it has ended (see the async ``ask``)."""
        return self._run(self._call.ask, text, timeout=timeout)

    def send_text(self, text: str) -> None:
        """Send the user's chat text."""
        self._run(self._call.send_text, text)

    def wait_for_reply(self, *, timeout: float | None = None) -> Reply:
        """The agent's next reply not yet returned, once it has ended."""
        return self._run(self._call.wait_for_reply, timeout=timeout)

    def reply_to_tool(self, tool_id: str, result: Any) -> None:
        """Answer the tool request ``tool_id``."""
        self._run(self._call.reply_to_tool, tool_id, result)

    def fail_tool(self, tool_id: str, reason: str) -> None:
        """Answer the tool request ``tool_id`` with an error result."""
        self._run(self._call.fail_tool, tool_id, reason)

    def send_raw(self, message: Message | str) -> None:
        """Send a message past the core (see the async ``send_raw``)."""
        self._run(self._call.send_raw, message)

    def terminate(self) -> ConversationResultData | None:
        """End the conversation and return its result (bounded wait)."""
        return self._run(self._call.terminate)

    def interrupt(self) -> float:
        """Stop the agent's audio now (see the async ``interrupt``); the seconds dropped."""
        return self._in_loop(self._call.interrupt)

    def mute(self) -> None:
        """Stop sending the caller's audio."""
        self._in_loop(self._call.mute)

    def unmute(self) -> None:
        """Resume sending the caller's audio."""
        self._in_loop(self._call.unmute)

    @property
    def muted(self) -> bool:
        """Whether the caller's audio is muted."""
        return self._call.muted

    def close(self) -> None:
        """End the call (terminate, bounded wait for the close), and stop its thread. Idempotent."""
        if self._closed:
            return
        try:
            self._run(self._call.aclose)
        finally:
            self._closed = True
            self._stack.close()

    # Events.

    def next_event(self, *, timeout: float | None = None) -> ClientEvent | None:
        """The next event; ``None`` once the call is over.

        Raises:
            TimeoutError: none within ``timeout`` seconds.
            BlackBoxError: the conversation failed.
        """
        return self._run(self._call.next_event, timeout=timeout)

    def events(self, *, timeout: float | None = None) -> Iterator[ClientEvent]:
        """Every event until the call is over, each within ``timeout`` seconds.

        Raises:
            TimeoutError: no event came within ``timeout`` seconds.
        """
        while (event := self.next_event(timeout=timeout)) is not None:
            yield event

    def __iter__(self) -> Iterator[ClientEvent]:
        return self.events()

    def on(self, kind: type[E], handler: Callable[[E], None]) -> Callable[[], None]:
        """Call ``handler`` with every event of ``kind``, in the call's thread (keep it quick).

        Returns:
            A function that removes the handler.
        """
        if self._closed:
            raise LocalProtocolError("the call is closed")
        remove = self._portal.call(self._call.on, kind, handler)

        def remove_from_any_thread() -> None:
            if not self._closed:
                self._portal.call(remove)

        return remove_from_any_thread

    def _in_loop(self, function: Callable[[], T]) -> T:
        """Call ``function`` on the call's loop (the media lives there), and return its value."""
        if self._closed:
            raise LocalProtocolError("the call is closed")
        return self._portal.call(function)

    def _run(self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``function(*args, **kwargs)`` on the call's loop, and return what it returns."""
        if self._closed:
            # The loop is gone: what the call knows is still readable, nothing else.
            raise LocalProtocolError("the call is closed")

        async def run() -> T:
            return await function(*args, **kwargs)

        return self._portal.call(run)
