"""Chat with a BlackBox agent: say one thing, print what is said, hang up.

    BLACKBOX_TOKEN=... python examples/quickstart_chat.py "Hello! What can you do?"

The token is a web-integration token. The server is $BLACKBOX_SERVER, by
default the production service; BLACKBOX_SERVER=ws://127.0.0.1:8765 talks to
a local ``blackbox emulator`` instead.
"""

from __future__ import annotations

import os
import sys

import anyio
import blackbox_protocol as bb


async def chat(message: str, *, quiet: float = 5.0) -> bb.ConversationResultData | None:
    """Send ``message``; print the conversation until it is quiet for ``quiet`` s; terminate."""
    token = os.environ["BLACKBOX_TOKEN"]
    server = os.environ.get("BLACKBOX_SERVER", bb.DEFAULT_SERVER)
    async with bb.connect(token, server=server) as call:  # returns once the agent is ready
        await call.send_text(message)
        speaker: str | None = None
        # The protocol has no end-of-reply marker: the reply is over when the agent goes quiet.
        with anyio.CancelScope(deadline=anyio.current_time() + quiet) as reply:
            async for event in call:  # the iteration ends if the agent ends the conversation
                if isinstance(event, bb.TextReceived):  # replies come in chunks
                    if event.source != speaker:  # "assistant", or "user": the echo of ours
                        print(f"\n{event.source}: " if speaker else f"{event.source}: ", end="")
                        speaker = event.source
                    print(event.text, end="", flush=True)
                    reply.deadline = anyio.current_time() + quiet
        print()
        return await call.terminate()  # ends the conversation; its result comes back


def main() -> int:
    """``python examples/quickstart_chat.py [MESSAGE]``."""
    if not os.environ.get("BLACKBOX_TOKEN"):
        print("set BLACKBOX_TOKEN to a web-integration token", file=sys.stderr)
        return 2
    try:
        result = anyio.run(chat, " ".join(sys.argv[1:]) or "Hello!")
    except bb.BlackBoxError as exc:  # typed: AuthenticationError, ConnectError, ...
        print(f"the conversation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"[{result.status if result else 'ended without a result'}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
