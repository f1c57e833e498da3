"""``blackbox demo``: the whole stack offline, in one process, with no arguments.

It starts the emulator in-process on a free loopback port and holds a short
conversation with its scripted agent through the real driver and a real
WebSocket, printing the transcript and the result.
"""

from __future__ import annotations

import argparse
import sys

from blackbox_emulator import Emulator

from blackbox_cli._chat import converse
from blackbox_cli._output import HumanPrinter
from blackbox_cli._replies import ReplyTracker

__all__ = ["DEMO_MESSAGES", "run_demo"]

#: What the demo's caller says.
DEMO_MESSAGES = ["Hello! Who am I talking to?", "Thanks, that is all."]


async def run_demo(args: argparse.Namespace) -> int:
    """Run ``blackbox demo``."""
    async with Emulator(port=0) as emulator:
        sys.stderr.write(f"[emulator listening on {emulator.server}]\n")
        await converse(
            emulator.token,
            server=emulator.server,
            messages=DEMO_MESSAGES,
            printer=HumanPrinter(),
            replies=ReplyTracker(pause=0.5, timeout=10.0),
        )
    return 0
