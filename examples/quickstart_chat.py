"""Chat with a BlackBox agent: say one thing, print the agent's reply.

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


async def chat(message: str) -> bb.Reply:
    """Say ``message``, and return the agent's reply once it has ended."""
    server = os.environ.get("BLACKBOX_SERVER", bb.DEFAULT_SERVER)
    async with bb.connect(os.environ["BLACKBOX_TOKEN"], server=server) as call:
        return await call.ask(message)  # leaving the block ends the conversation


if __name__ == "__main__":
    print(anyio.run(chat, " ".join(sys.argv[1:]) or "Hello!").text)
