"""``blackbox chat``: a text conversation, interactive or scripted with ``--message``.

When the agent has answered is the core's business (``blackbox_protocol.turns``):
``--reply-pause`` is ``connect(reply_pause=...)``, each line is said with
``Call.ask``, and the next is said once the reply it got is on the screen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import anyio.from_thread
import anyio.lowlevel
from blackbox_protocol import (
    DEFAULT_REPLY_PAUSE,
    BlackBoxError,
    Call,
    CallType,
    ConversationResultData,
    Event,
    EventsDropped,
    NoReply,
    Reply,
    ReplyEnded,
    ReplyStarted,
    ReplyTimeout,
    Timeouts,
    ToolRequested,
    Turn,
    connect,
)

from blackbox_cli._options import (
    UsageError,
    additional_data,
    nonblank,
    positive,
    server,
    timeouts,
    token,
)
from blackbox_cli._outcome import check_result
from blackbox_cli._output import HumanPrinter, JsonPrinter, Printer

__all__ = ["add_chat_options", "converse", "run_chat"]

#: What stderr says when a reply did not end within ``--reply-timeout``.
NO_ANSWER: Final = "[the agent did not answer in time; going on]\n"
#: The replies the printer remembers having shown (the prompt waits for the latest).
_SHOWN: Final = 64


def add_chat_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``blackbox chat`` beyond the connection ones."""
    parser.add_argument(
        "--message",
        metavar="TEXT",
        action="append",
        type=nonblank,
        default=[],
        help="send TEXT once the agent has answered the previous one; repeat for more; "
        "terminate after the last (without --message: an interactive prompt)",
    )
    parser.add_argument(
        "--reply-pause",
        metavar="S",
        type=positive,
        default=DEFAULT_REPLY_PAUSE,
        help=f"seconds without new agent text that end its reply (default: {DEFAULT_REPLY_PAUSE})",
    )
    parser.add_argument(
        "--reply-timeout",
        metavar="S",
        type=positive,
        default=30.0,
        help="seconds to wait for the agent's reply to a message to end (default: 30)",
    )


async def run_chat(args: argparse.Namespace) -> int:
    """Run ``blackbox chat``; return the exit status (errors and a ``Failed`` result raise)."""
    if not args.message and sys.stdin is None:  # started with ``<&-``
        raise UsageError("standard input is closed, so nothing can be read: give --message TEXT")
    result = await converse(
        token(args),
        server=server(args),
        messages=args.message,
        printer=JsonPrinter() if args.json else HumanPrinter(),
        reply_pause=args.reply_pause,
        reply_timeout=args.reply_timeout,
        json=args.json,
        additional_data=additional_data(args.data),
        origin=args.origin,
        allow_insecure=args.insecure,
        timeouts=timeouts(args),
    )
    check_result(result)
    return 0


async def converse(
    token: str,
    *,
    server: str,
    messages: list[str],
    printer: Printer,
    reply_pause: float = DEFAULT_REPLY_PAUSE,
    reply_timeout: float = 30.0,
    json: bool = False,
    additional_data: dict[str, str] | None = None,
    origin: str | None = None,
    allow_insecure: bool = False,
    timeouts: Timeouts | None = None,
) -> ConversationResultData | None:
    """Chat: send ``messages`` one reply apart (or prompt when empty), then terminate.

    Returns:
        the conversation's result, whoever ended it; ``None`` if none came.
    """
    async with (
        connect(
            token,
            call_type=CallType.CHAT,
            server=server,
            additional_data=additional_data,
            origin=origin,
            allow_insecure=allow_insecure,
            reply_pause=reply_pause,
            timeouts=timeouts or Timeouts(),
        ) as call,
        anyio.create_task_group() as task_group,
    ):
        user = User(call, printer, reply_pause=reply_pause, reply_timeout=reply_timeout)

        async def show_events() -> None:
            try:
                async for event in call:
                    user.show(event)
            except BlackBoxError as exc:
                printer.failed(exc)
                raise
            # The conversation is over, whoever ended it: stop talking.
            task_group.cancel_scope.cancel()

        task_group.start_soon(show_events)
        if messages:
            await _send_messages(user, messages)
        else:
            await _prompt(user, json=json)
        await call.terminate()
    return call.result


class User:
    """The user's side of a chat: says a line, and waits until the agent's answer is shown.

    The call's events are shown by another task (``show``); a line said next
    waits for that task to have shown the reply, so that the transcript reads
    in order.
    """

    def __init__(
        self, call: Call, printer: Printer, *, reply_pause: float, reply_timeout: float
    ) -> None:
        self._call = call
        self._printer = printer
        self._reply_pause = reply_pause
        self._reply_timeout = reply_timeout
        self._shown: deque[Turn] = deque(maxlen=_SHOWN)
        self._dropped = False
        self._progress = anyio.Event()
        self._reply_started = anyio.Event()
        #: The latest reply to end, and whether a tool request came after it.
        replies = [turn for turn in call.transcript if turn.source == "assistant"]
        self._latest: Turn | None = replies[-1] if replies else None
        self._tool_after_reply = False
        current = call.connection.current_turn
        if replies or (current is not None and current.source == "assistant"):
            self._reply_started.set()
        call.on(ReplyStarted, lambda _: self._reply_started.set())
        call.on(ReplyEnded, self._reply_ended)
        call.on(ToolRequested, self._tool_requested)

    @property
    def over(self) -> bool:
        """Whether the conversation can take no more of the user's text."""
        return not self._call.connection.can_send_text

    def sent(self, text: str) -> None:
        """Show the user's text as said."""
        self._printer.sent(text)

    def show(self, event: Event) -> None:
        """Show an event of the call's iteration, and note the replies shown."""
        self._printer.event(event)
        if isinstance(event, ReplyEnded):
            self._shown.append(event.turn)
        elif isinstance(event, EventsDropped):
            self._dropped = True  # a reply waited for may be among them
        self._progress.set()
        self._progress = anyio.Event()

    async def greeting(self) -> None:
        """Let the agent's greeting end; one not started within the reply pause is none."""
        with anyio.move_on_after(self._reply_pause):
            await self._reply_started.wait()
        if self._reply_started.is_set():
            await self._answered(lambda: self._call.wait_for_reply(timeout=self._reply_timeout))

    async def say(self, text: str) -> bool:
        """Say ``text`` and wait for the answer; ``False`` once the conversation is over."""
        if self.over:
            return False
        return await self._answered(lambda: self._call.ask(text, timeout=self._reply_timeout))

    async def _answered(self, reply: Callable[[], Awaitable[Reply]]) -> bool:
        try:
            answer = await reply()
            # A tool request ends a reply (see blackbox_protocol.turns), and the
            # agent goes on once it has the result: its answer is the reply after.
            while answer.turn is not self._latest or self._tool_after_reply:
                answer = await self._call.wait_for_reply(timeout=self._reply_timeout)
        except ReplyTimeout:
            self._printer.end_reply()
            sys.stderr.write(NO_ANSWER)
            sys.stderr.flush()
            return not self.over
        except NoReply:
            return False
        while not self._dropped and all(turn is not answer.turn for turn in self._shown):
            await self._progress.wait()
        self._printer.end_reply()
        return not self.over

    def _reply_ended(self, event: ReplyEnded) -> None:
        self._latest = event.turn
        self._tool_after_reply = False

    def _tool_requested(self, event: ToolRequested) -> None:
        self._tool_after_reply = True


async def _send_messages(user: User, messages: list[str]) -> None:
    await user.greeting()
    for message in messages:
        if user.over:
            return
        user.sent(message)
        if not await user.say(message):
            return


async def _prompt(user: User, *, json: bool) -> None:
    # A person at a terminal gets a prompt; lines piped in are shown as sent,
    # as with --message; --json output stays JSON.
    typed = sys.stdin.isatty()
    prompt = "you: " if typed and not json else ""
    await user.greeting()
    while not user.over:
        line = await _next_line(prompt)
        if line is None or line.strip() in ("/quit", "/exit"):
            return
        if line.strip():
            if not typed:
                user.sent(line.strip())
            if not await user.say(line.strip()):
                return


async def _next_line(prompt: str) -> str | None:
    """The user's next line, ``None`` at the end of input.

    A read of stdin cannot be cancelled, so it runs in a daemon thread: one
    left blocked by Ctrl-C must not keep the process alive (anyio's worker
    threads are not daemons: the interpreter would wait for it at exit).
    """
    done = anyio.Event()
    lines: list[str | None] = []
    failures: list[BaseException] = []
    token = anyio.lowlevel.current_token()

    def read() -> None:
        try:
            lines.append(_read_line(prompt))
        except BaseException as exc:
            failures.append(exc)
        # Once interrupted, nobody waits for this line any more.
        with contextlib.suppress(anyio.RunFinishedError):
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=read, name="blackbox-stdin", daemon=True).start()
    await done.wait()
    if failures:
        raise failures[0]
    return lines[0]


def _read_line(prompt: str) -> str | None:
    """Prompt, then read a line of stdin; ``None`` at its end.

    The descriptor is read directly, unbuffered: a thread blocked here holds
    no lock of ``sys.stdin``, which the interpreter takes at exit (a daemon
    thread blocked in ``input()`` makes the exit abort).
    """
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(sys.stdin.fileno(), 1)
        if not byte:
            if not line:
                return None
            break
        line += byte
    return line.decode(sys.stdin.encoding or "utf-8", errors="replace").rstrip("\r\n")
