"""``blackbox``: the command line's entry point, its commands, and its exit statuses.

Exit statuses: 0 a normal end; 2 a usage error; 3 authentication failed (the
token); 4 the integration's configuration refused us; 5 a protocol error or a
timeout; 6 the connection failed or dropped; 130 interrupted (Ctrl-C). Every
failure prints one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

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
from blackbox_cli._emulator import add_emulator_options, run_emulator
from blackbox_cli._options import UsageError, add_connection_options

__all__ = ["main"]

EXIT_USAGE: Final = 2
EXIT_AUTHENTICATION: Final = 3
EXIT_CONFIGURATION: Final = 4
EXIT_PROTOCOL: Final = 5
EXIT_CONNECTION: Final = 6
EXIT_INTERRUPTED: Final = 130

Command = Callable[[argparse.Namespace], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``blackbox`` and its commands."""
    parser = argparse.ArgumentParser(
        prog="blackbox",
        description="Talk to a Dasha BlackBox agent, or run a local emulator of the service.",
        epilog="Exit status: 0 ok, 2 usage, 3 authentication, 4 configuration, "
        "5 protocol or timeout, 6 connection, 130 interrupted.",
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
    args = build_parser().parse_args(argv)
    # The SDK's warnings (a tool that failed, an ignored frame) as notes on stderr.
    logging.basicConfig(format="[%(levelname)s %(name)s: %(message)s]", level=logging.WARNING)
    command: Command = args.command
    try:
        return anyio.run(command, args)
    except KeyboardInterrupt:
        sys.stderr.write("blackbox: interrupted\n")
        return EXIT_INTERRUPTED
    except UsageError as exc:
        sys.stderr.write(f"blackbox: {exc}\n")
        return EXIT_USAGE
    except BaseExceptionGroup as group:
        error = _first_error(group)
        if error is None:
            raise
        return _report(error)
    except BlackBoxError as exc:
        return _report(exc)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BlackBoxError | None:
    for exc in group.exceptions:
        if isinstance(exc, BlackBoxError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_error(exc)
            if found is not None:
                return found
    return None


def _report(error: BlackBoxError) -> int:
    status, line = _describe(error)
    sys.stderr.write(f"blackbox: {line}\n")
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
