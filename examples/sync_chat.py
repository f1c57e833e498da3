"""A text chat without async: ``blackbox_protocol.sync``, for scripts and threaded code.

It says each line once the agent has answered the previous one, runs the
agent's client-side tools, then terminates and returns the transcript.

    BLACKBOX_TOKEN=... python examples/sync_chat.py "Hi!" "What can you do?"
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import blackbox_protocol as bb
from blackbox_protocol.sync import connect


def chat(
    server: str,
    token: str,
    lines: Sequence[str],
    *,
    tools: Mapping[str, bb.ToolHandler] | None = None,
    reply_pause: float = bb.DEFAULT_REPLY_PAUSE,
) -> list[tuple[str, str]]:
    """Chat, and return the transcript as ``(source, text)`` pairs.

    Raises:
        blackbox_protocol.BlackBoxError: the conversation failed; the subclass
            says why (``AuthenticationError``, ``ReplyTimeout``, ...).
    """
    with connect(token, server=server, tools=tools or {}, reply_pause=reply_pause) as call:
        call.wait_for_reply()  # the greeting (for an agent that does not greet, drop this)
        for line in lines:
            call.ask(line)  # returns the reply once it has ended
        call.terminate()
    return [(turn.source, turn.text) for turn in call.transcript]


def main(argv: Sequence[str] | None = None) -> int:
    """``python examples/sync_chat.py [--server URL] LINE...``; the token is in BLACKBOX_TOKEN."""
    parser = argparse.ArgumentParser(description="Chat with a BlackBox agent.")
    parser.add_argument("lines", nargs="+", help="what to say, one line a turn")
    parser.add_argument("--server", default=bb.DEFAULT_SERVER, help="default %(default)s")
    parser.add_argument("--reply-pause", type=float, default=bb.DEFAULT_REPLY_PAUSE)
    args = parser.parse_args(argv)
    token = os.environ.get("BLACKBOX_TOKEN")
    if not token:
        parser.error("set BLACKBOX_TOKEN to a web-integration token")
    try:
        transcript = chat(args.server, token, args.lines, reply_pause=args.reply_pause)
    except bb.BlackBoxError as exc:  # a bad server URL, too: a LocalProtocolError
        print(f"the conversation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for source, text in transcript:
        print(f"{'agent' if source == 'assistant' else 'you'}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
