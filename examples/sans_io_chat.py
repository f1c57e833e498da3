"""A text chat with a BlackBox agent: the sans-IO core driven by the websockets sync client.

No driver, no event loop: one thread, one socket, and the loop in ``chat``.
It says each line once the agent's reply has ended (the core's ``ReplyEnded``:
quiet for ``reply_pause`` seconds), runs the agent's client-side tools, then
terminates and returns the transcript. (``examples/sync_chat.py`` does the
same with the SDK's sync API, in a few lines.)

    BLACKBOX_TOKEN=... python examples/sans_io_chat.py "Hi!" "What can you do?"
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import blackbox_protocol as bb
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import connect

SERVER = "wss://blackbox.dasha.ai"


def chat(
    server: str,
    token: str,
    lines: Sequence[str],
    *,
    tools: Mapping[str, Callable[..., Any]] | None = None,
    reply_pause: float = bb.DEFAULT_REPLY_PAUSE,
    reply_timeout: float = 30.0,
) -> list[tuple[str, str]]:
    """Chat, and return the transcript as ``(source, text)`` pairs.

    Raises:
        blackbox_protocol.BlackBoxError: the conversation failed; the subclass
            says why (``AuthenticationError``, ``DisconnectedError``, ...).
    """
    tools = tools or {}
    url = f"{server}/api/v1/ws/webCall?token={quote(token, safe='')}"
    connection = bb.ClientConnection(reply_pause=reply_pause)
    to_say = list(lines)
    speak_at: float | None = None  # when to say the next line (or terminate) at the latest
    try:
        ws = connect(url, max_size=bb.DEFAULT_MAX_FRAME_SIZE)
    except InvalidURI:
        raise ValueError(f"not a WebSocket server URL: {server!r}") from None  # hide the token
    with ws:
        connection.initialize(bb.CallType.CHAT, now=time.time())
        while connection.state is not bb.ConnectionState.CLOSED:
            now = time.time()
            if speak_at is not None and now >= speak_at:
                speak_at = None
                if to_say:
                    connection.send_text(to_say.pop(0), now=now)
                    speak_at = now + reply_timeout
                else:
                    connection.terminate(now=now)
            deadlines = [d for d in (connection.next_deadline(), speak_at) if d is not None]
            try:
                for frame in connection.frames_to_send():
                    ws.send(frame)
                received = ws.recv(timeout=max(0.0, min(deadlines) - now) if deadlines else None)
            except TimeoutError:
                connection.handle_timer(now=time.time())
            except ConnectionClosed as exc:
                # No close frame (1006) is code None: a normal end after the result.
                code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
                connection.receive_close(code, reason)
            else:
                connection.receive_frame(received, now=time.time())

            for event in connection.events_received():
                now = time.time()
                match event:
                    case bb.Connected():
                        speak_at = now + reply_pause  # a greeting starts by then, or none comes
                    case bb.ReplyStarted() if speak_at is not None:
                        speak_at = now + reply_timeout  # wait for its end (bounded)
                    case bb.ReplyEnded() if speak_at is not None:  # None once we terminated
                        speak_at = now  # the agent has had its say: our turn
                    case bb.ToolRequested(id=tool_id, name=name, args=args):
                        try:  # every request gets one answer, even when the tool fails
                            connection.reply_to_tool(tool_id, tools[name](**args), now=now)
                        except Exception as exc:
                            connection.fail_tool(tool_id, f"{type(exc).__name__}: {exc}", now=now)
                    case bb.ProtocolViolation(reason=reason):
                        print(f"ignored a bad frame: {reason}", file=sys.stderr)
                    case bb.ConversationEnded() | bb.ConversationFailed():
                        speak_at = None
                        ws.close()  # the next recv reports the close
    if connection.error is not None:
        raise connection.error
    return [(turn.source, turn.text) for turn in connection.transcript]


def main(argv: Sequence[str] | None = None) -> int:
    """``python examples/sans_io_chat.py [--server URL] LINE...``; the token: BLACKBOX_TOKEN."""
    parser = argparse.ArgumentParser(description="Chat with a BlackBox agent.")
    parser.add_argument("lines", nargs="+", help="what to say, one line a turn")
    parser.add_argument("--server", default=SERVER, help=f"default {SERVER}")
    parser.add_argument("--reply-pause", type=float, default=bb.DEFAULT_REPLY_PAUSE)
    args = parser.parse_args(argv)
    token = os.environ.get("BLACKBOX_TOKEN")
    if not token:
        parser.error("set BLACKBOX_TOKEN to a web-integration token")
    try:
        transcript = chat(args.server, token, args.lines, reply_pause=args.reply_pause)
    except bb.BlackBoxError as exc:
        print(f"the conversation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (OSError, InvalidHandshake, ValueError) as exc:
        print(f"cannot connect to {args.server}: {exc}", file=sys.stderr)
        return 1
    for source, text in transcript:
        print(f"{'agent' if source == 'assistant' else 'you'}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
