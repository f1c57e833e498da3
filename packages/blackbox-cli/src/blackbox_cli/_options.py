"""Options shared by the commands that talk to a server: where, with which token, what data."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from blackbox_protocol import DEFAULT_SERVER, Timeouts

__all__ = [
    "UsageError",
    "add_connection_options",
    "additional_data",
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
    parser.add_argument("--origin", metavar="ORIGIN", help="an Origin header to send")
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
    """An argparse type: a positive number of seconds."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


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
    """The server from ``--server``, ``$BLACKBOX_SERVER`` or the default."""
    value: str = args.server or os.environ.get("BLACKBOX_SERVER") or DEFAULT_SERVER
    return value


def additional_data(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict."""
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--data takes KEY=VALUE, not {pair!r}")
        data[key] = value
    return data
