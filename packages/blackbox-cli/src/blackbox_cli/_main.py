"""``blackbox``: the command line's entry point, its commands, and its exit statuses.

Exit statuses: 0 a normal end; 2 a usage error; 3 authentication failed (the
token); 4 the integration's configuration refused us; 5 a protocol error or a
timeout; 6 the connection failed or dropped; 7 the conversation ended with a
``Failed`` result; 130 interrupted (Ctrl-C); 141 the
reader of the output went away (``| head``). Every failure prints one line on
stderr, except 141: a reader that stopped reading is not an error to report,
so the command ends quietly (after terminating a conversation in progress),
with the status a shell gives a command killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Final, NoReturn, TypeVar

import anyio
from blackbox_protocol import (
    AuthenticationError,
    BlackBoxError,
    ConfigurationError,
    ConnectError,
    DisconnectedError,
    LocalProtocolError,
    MediaError,
)

from blackbox_cli._call import add_call_options, run_call
from blackbox_cli._chat import add_chat_options, run_chat
from blackbox_cli._demo import add_demo_options, run_demo
from blackbox_cli._devices import run_devices
from blackbox_cli._emulator import add_emulator_options, log_level, run_emulator
from blackbox_cli._options import UsageError, add_connection_options
from blackbox_cli._outcome import FailedResult

__all__ = ["main"]

EXIT_USAGE: Final = 2
EXIT_AUTHENTICATION: Final = 3
EXIT_CONFIGURATION: Final = 4
EXIT_PROTOCOL: Final = 5
EXIT_CONNECTION: Final = 6
#: The conversation ran, and its result says ``Failed`` (the service's side went wrong).
EXIT_FAILED: Final = 7
EXIT_INTERRUPTED: Final = 130
#: 128 + SIGPIPE: what a shell reports for a writer whose reader went away.
EXIT_BROKEN_PIPE: Final = 141

Command = Callable[[argparse.Namespace], Awaitable[int]]
_Error = TypeVar("_Error", bound=BaseException)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, as every other error is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"blackbox: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``blackbox`` and its commands."""
    parser = _Parser(
        prog="blackbox",
        description="Talk to a Dasha BlackBox agent, or run a local emulator of the service.",
        epilog="Exit status: 0 ok, 2 usage, 3 authentication, 4 configuration, "
        "5 protocol or timeout, 6 connection, 7 a Failed result, 130 interrupted, "
        "141 output closed.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    chat = commands.add_parser(
        "chat",
        help="chat with an agent (interactive, or scripted with --message)",
        description="Chat with an agent: an interactive prompt, or the given --message "
        "texts one after another, each once the agent has answered the previous one.",
    )
    add_connection_options(chat)
    add_chat_options(chat)
    chat.set_defaults(command=run_chat)

    call = commands.add_parser(
        "call",
        help="a voice call: files with --play, else the microphone and speaker",
        description="Call an agent by voice. With --play, the files are played as the caller "
        "(several make a turn script) and nothing needs a sound card; without, the microphone "
        "and speaker are used. The transcript is printed as it arrives; Ctrl-C hangs up "
        "cleanly and keeps the recording.",
    )
    add_connection_options(call)
    add_call_options(call)
    call.set_defaults(command=run_call)

    devices = commands.add_parser(
        "devices",
        help="list the audio inputs and outputs",
        description="List the microphones and speakers blackbox call can use.",
    )
    devices.set_defaults(command=run_devices)

    demo = commands.add_parser(
        "demo",
        help="the whole stack offline: a voice call to an in-process emulator",
        description="Start the emulator in this process and call its scripted agent by "
        "voice with the file backend, printing the transcript and the result and recording "
        "the call. No network, no sound card.",
    )
    add_demo_options(demo)
    demo.set_defaults(command=run_demo)

    emulator = commands.add_parser(
        "emulator",
        help="run a local BlackBox-compatible server",
        description="Run a local emulator of the service, with a scripted agent and "
        "optional fault injection. It accepts only its token.",
    )
    add_emulator_options(emulator)
    emulator.set_defaults(command=run_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``blackbox`` with ``argv`` (default: the process's arguments); return the exit status."""
    try:
        return _run(argv)
    except BrokenPipeError:
        return _reader_gone()


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a usage error: argparse has said it
        if sys.stdout is not None:
            sys.stdout.flush()
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if sys.stdout is None:  # started with its descriptor closed (``>&-``)
        _say("standard output is closed; to discard the output, send it to /dev/null")
        return EXIT_USAGE
    # The SDK's warnings (a tool that failed, an ignored frame) as notes on stderr;
    # the emulator's, as much as its options ask for.
    level = log_level(args) if hasattr(args, "log_level") else logging.WARNING
    logging.basicConfig(format="[%(levelname)s %(name)s: %(message)s]", level=level)
    command: Command = args.command
    try:
        status = anyio.run(command, args)
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except FailedResult as exc:
        _say(str(exc))
        return EXIT_FAILED
    except BaseExceptionGroup as group:
        error = _first(group, BlackBoxError)
        if error is not None:
            return _report(error)
        if _first(group, BrokenPipeError) is not None:
            return _reader_gone()
        raise
    except BlackBoxError as exc:
        return _report(exc)


def _first(group: BaseExceptionGroup[BaseException], kind: type[_Error]) -> _Error | None:
    """The first exception of ``kind`` in ``group``, however deep."""
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first(exc, kind)
            if found is not None:
                return found
    return None


def _reader_gone() -> int:
    """Stop quietly: the reader of our output (``| head``) has gone; nobody reads more."""
    # The interpreter flushes stdout at exit, which would fail again (with a
    # traceback): what is left in its buffer is for nobody now. Python's
    # documentation of SIGPIPE does the same.
    with suppress(OSError, ValueError):  # ValueError: a stdout without a descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _say(line: str) -> None:
    """One line on stderr, ``blackbox: LINE``; nothing if stderr itself is gone."""
    if sys.stderr is not None:
        with suppress(OSError):
            sys.stderr.write(f"blackbox: {line}\n")
            sys.stderr.flush()


def _report(error: BlackBoxError) -> int:
    status, line = _describe(error)
    _say(line)
    return status


def _describe(error: BlackBoxError) -> tuple[int, str]:
    match error:
        case AuthenticationError():
            return EXIT_AUTHENTICATION, f"authentication failed: {error} (check or renew the token)"
        case ConfigurationError():
            return EXIT_CONFIGURATION, f"the integration refused this client: {error}"
        case LocalProtocolError():
            return EXIT_USAGE, str(error)
        case MediaError():
            return EXIT_CONNECTION, f"the call's audio failed: {error}"
        case ConnectError() | DisconnectedError():
            return EXIT_CONNECTION, f"connection failed: {error}"
        case _:
            return EXIT_PROTOCOL, f"{type(error).__name__}: {error}"
