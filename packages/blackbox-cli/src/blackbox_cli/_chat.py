"""``blackbox chat``: a text conversation, interactive or scripted with ``--message``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading

import anyio
import anyio.from_thread
import anyio.lowlevel
from blackbox_protocol import BlackBoxError, Call, CallType, Timeouts, connect

from blackbox_cli._options import (
    UsageError,
    additional_data,
    nonblank,
    positive,
    server,
    timeouts,
    token,
)
from blackbox_cli._output import HumanPrinter, JsonPrinter, Printer
from blackbox_cli._replies import ReplyTracker

__all__ = ["add_chat_options", "converse", "run_chat"]


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
        default=1.0,
        help="seconds without new agent text that end its reply (default: 1.0)",
    )
    parser.add_argument(
        "--reply-timeout",
        metavar="S",
        type=positive,
        default=30.0,
        help="seconds to wait for the agent to start a reply (default: 30)",
    )


async def run_chat(args: argparse.Namespace) -> int:
    """Run ``blackbox chat``; return the exit status (errors are raised)."""
    if not args.message and sys.stdin is None:  # started with ``<&-``
        raise UsageError("standard input is closed, so nothing can be read: give --message TEXT")
    await converse(
        token(args),
        server=server(args),
        messages=args.message,
        printer=JsonPrinter() if args.json else HumanPrinter(),
        replies=ReplyTracker(pause=args.reply_pause, timeout=args.reply_timeout),
        json=args.json,
        additional_data=additional_data(args.data),
        origin=args.origin,
        allow_insecure=args.insecure,
        timeouts=timeouts(args),
    )
    return 0


async def converse(
    token: str,
    *,
    server: str,
    messages: list[str],
    printer: Printer,
    replies: ReplyTracker,
    json: bool = False,
    additional_data: dict[str, str] | None = None,
    origin: str | None = None,
    allow_insecure: bool = False,
    timeouts: Timeouts | None = None,
) -> None:
    """Chat: send ``messages`` one reply apart (or prompt when empty), then terminate."""
    async with (
        connect(
            token,
            call_type=CallType.CHAT,
            server=server,
            additional_data=additional_data,
            origin=origin,
            allow_insecure=allow_insecure,
            timeouts=timeouts or Timeouts(),
        ) as call,
        anyio.create_task_group() as task_group,
    ):

        async def show_events() -> None:
            try:
                async for event in call:
                    printer.event(event)
                    replies.saw(event)
            except BlackBoxError as exc:
                printer.failed(exc)
                raise
            # The conversation is over, whoever ended it: stop talking.
            task_group.cancel_scope.cancel()

        task_group.start_soon(show_events)
        if messages:
            await _send_messages(call, messages, replies, printer)
        else:
            await _prompt(call, replies, printer, json=json)
        await call.terminate()


async def _send_messages(
    call: Call, messages: list[str], replies: ReplyTracker, printer: Printer
) -> None:
    await replies.settle(expect_reply=False)  # let a greeting finish first
    for message in messages:
        printer.sent(message)
        await call.send_text(message)
        if not await replies.settle(expect_reply=True):
            printer.end_reply()
            sys.stderr.write("[the agent did not answer in time; going on]\n")
        printer.end_reply()


async def _prompt(call: Call, replies: ReplyTracker, printer: Printer, *, json: bool) -> None:
    # A person at a terminal gets a prompt; lines piped in are shown as sent,
    # as with --message; --json output stays JSON.
    typed = sys.stdin.isatty()
    prompt = "you: " if typed and not json else ""
    while True:
        await replies.settle(expect_reply=False)
        printer.end_reply()
        line = await _next_line(prompt)
        if line is None or line.strip() in ("/quit", "/exit"):
            return
        if line.strip():
            if not typed:
                printer.sent(line.strip())
            await call.send_text(line.strip())
            await replies.settle(expect_reply=True)


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
