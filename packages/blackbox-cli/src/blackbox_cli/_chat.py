"""``blackbox chat``: a text conversation, interactive or scripted with ``--message``."""

from __future__ import annotations

import argparse
import sys

import anyio
import anyio.to_thread
from blackbox_protocol import BlackBoxError, Call, CallType, connect

from blackbox_cli._options import additional_data, server, token
from blackbox_cli._output import HumanPrinter, JsonPrinter, Printer
from blackbox_cli._replies import ReplyTracker

__all__ = ["add_chat_options", "converse", "run_chat"]


def add_chat_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``blackbox chat`` beyond the connection ones."""
    parser.add_argument(
        "--message",
        metavar="TEXT",
        action="append",
        default=[],
        help="send TEXT once the agent has answered the previous one; repeat for more; "
        "terminate after the last (without --message: an interactive prompt)",
    )
    parser.add_argument(
        "--reply-pause",
        metavar="S",
        type=float,
        default=1.0,
        help="seconds without new agent text that end its reply (default: 1.0)",
    )
    parser.add_argument(
        "--reply-timeout",
        metavar="S",
        type=float,
        default=30.0,
        help="seconds to wait for the agent to start a reply (default: 30)",
    )


async def run_chat(args: argparse.Namespace) -> int:
    """Run ``blackbox chat``; return the exit status (errors are raised)."""
    await converse(
        token(args),
        server=server(args),
        messages=args.message,
        printer=JsonPrinter() if args.json else HumanPrinter(),
        replies=ReplyTracker(pause=args.reply_pause, timeout=args.reply_timeout),
        additional_data=additional_data(args.data),
        origin=args.origin,
        allow_insecure=args.insecure,
    )
    return 0


async def converse(
    token: str,
    *,
    server: str,
    messages: list[str],
    printer: Printer,
    replies: ReplyTracker,
    additional_data: dict[str, str] | None = None,
    origin: str | None = None,
    allow_insecure: bool = False,
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
            await _prompt(call, replies, printer)
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


async def _prompt(call: Call, replies: ReplyTracker, printer: Printer) -> None:
    while True:
        await replies.settle(expect_reply=False)
        printer.end_reply()
        line = await anyio.to_thread.run_sync(_read_line, abandon_on_cancel=True)
        if line is None or line.strip() in ("/quit", "/exit"):
            return
        if line.strip():
            await call.send_text(line.strip())
            await replies.settle(expect_reply=True)


def _read_line() -> str | None:
    try:
        return input("you: ")
    except EOFError:
        return None
