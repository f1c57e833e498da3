"""Options shared by the commands that talk to a server: where, with which token, what data."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence

from blackbox_protocol import DEFAULT_SERVER, Timeouts, check_server

__all__ = [
    "UsageError",
    "add_connection_options",
    "additional_data",
    "device",
    "file_path",
    "nonblank",
    "port",
    "positive",
    "server",
    "timeouts",
    "token",
]


class UsageError(Exception):
    """The command line is wrong; the message says how to fix it."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The ``--server``, ``--token``, ``--data``, ``--origin``, ``--json`` options."""
    parser.add_argument(
        "--server",
        metavar="URL",
        help=f"wss://host[:port] of the service, or ws://127.0.0.1:PORT of an emulator "
        f"(default: $BLACKBOX_SERVER, else {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        help="the web-integration token (default: $BLACKBOX_TOKEN; prefer the variable, "
        "since arguments are visible to other users of this machine)",
    )
    parser.add_argument(
        "--data",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="additional data for the agent (a string value); repeat for more keys",
    )
    parser.add_argument(
        "--origin", metavar="ORIGIN", help="an Origin header to send (scheme://host[:port])"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain ws:// to a host that is not this machine",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per line for every event"
    )
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=positive,
        default=10.0,
        help="seconds allowed for connecting, and for the agent's session to be ready "
        "(default: 10)",
    )


def positive(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535 (0: any free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text!r}")
    return value


def file_path(text: str) -> str:
    """An argparse type: a file's path, as written (messages show it so), not empty."""
    if not text:
        raise argparse.ArgumentTypeError("must be a file's path, not an empty string")
    return text


def nonblank(value: str) -> str:
    """An argparse type: text that is not empty or only blanks."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f"must not be empty, not {value!r}")
    return value


def device(text: str) -> int | str:
    """An argparse type: a device's index (as ``blackbox devices`` lists it), or its name."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a device's name or index, not empty")
    return int(text) if text.isdecimal() else text


def timeouts(args: argparse.Namespace) -> Timeouts:
    """The driver's waits, with ``--timeout`` for connecting and the session."""
    return Timeouts(open=args.timeout, session=args.timeout)


def token(args: argparse.Namespace) -> str:
    """The token from ``--token`` or ``$BLACKBOX_TOKEN``."""
    value: str | None = args.token or os.environ.get("BLACKBOX_TOKEN")
    if not value:
        raise UsageError("no token: pass --token or set BLACKBOX_TOKEN")
    return value


def server(args: argparse.Namespace) -> str:
    """The server from ``--server``, ``$BLACKBOX_SERVER`` or the default.

    Checked now, with ``--origin`` and ``--insecure``, as ``connect()`` will
    check them: before a command opens any file or device for the call.

    Raises:
        LocalProtocolError: the server or the origin is not valid.
    """
    value: str = args.server or os.environ.get("BLACKBOX_SERVER") or DEFAULT_SERVER
    check_server(value, origin=args.origin, allow_insecure=args.insecure)
    return value


def additional_data(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict; each key once."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--data takes KEY=VALUE, not {pair!r}")
        if key in data:
            raise UsageError(f"--data gives {key!r} twice; give each key once")
        data[key] = value
    return data
