"""Client-side tools: the agent asks this program to run a function, and uses its result.

Against the emulator's weather desk (or an agent of yours with a ``get_weather`` tool):

    blackbox emulator --script examples/agents/weather.toml --token demo-token
    BLACKBOX_SERVER=ws://127.0.0.1:8765 BLACKBOX_TOKEN=demo-token \\
        python examples/tools_chat.py "What is the weather in Paris?"
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import blackbox_protocol as bb

log = logging.getLogger("tools_chat")

#: Made-up forecasts, in place of a real weather service: city to (degrees Celsius, sky).
FORECASTS = {"paris": (18, "cloudy"), "rome": (24, "sunny"), "oslo": (-3, "snowing")}


def get_weather(city: str, units: str = "metric", *, context: bb.ToolContext) -> dict[str, Any]:
    """A tool: called with the request's ``args`` as keyword arguments.

    A plain function runs in a worker thread, so it may block (a database, an
    HTTP call) without stalling the conversation. What it returns must be JSON;
    what it raises reaches the agent as ``{"error": "LookupError: no forecast for X"}``.
    A parameter annotated ``bb.ToolContext`` (any name) gets the request's id,
    the tool's name and the call.
    """
    log.info("request %s in conversation %s", context.id, context.call.conversation_id)
    forecast = FORECASTS.get(city.strip().lower())
    if forecast is None:
        raise LookupError(f"no forecast for {city}")
    celsius, sky = forecast
    degrees = celsius if units == "metric" else round(celsius * 9 / 5 + 32)
    return {"temperature": degrees, "sky": sky}


TOOLS: Mapping[str, bb.ToolHandler] = {"get_weather": get_weather}


def show_request(event: bb.ToolRequested) -> None:
    """Show a tool request as it comes (the driver runs the tool: this only shows it)."""
    print(f"[tool {event.name}({event.args})] ", end="", flush=True)


async def chat(
    messages: Sequence[str],
    *,
    tools: Mapping[str, bb.ToolHandler] = TOOLS,
    reply_pause: float = bb.DEFAULT_REPLY_PAUSE,
) -> bb.ConversationResultData | None:
    """Say each message once the agent has answered the previous one; then terminate."""
    async with bb.connect(
        os.environ["BLACKBOX_TOKEN"],
        server=os.environ.get("BLACKBOX_SERVER", bb.DEFAULT_SERVER),
        tools=tools,
        reply_pause=reply_pause,  # seconds of the agent's silence that end its reply
        timeouts=bb.Timeouts(tool=10.0),  # a tool's deadline; then the agent gets an error
    ) as call:
        call.on(bb.ToolRequested, show_request)
        print((await call.wait_for_reply()).text)  # the greeting: this agent greets
        for message in messages:
            if call.result is not None:  # the agent ended the conversation
                break
            print(f"you: {message}")
            reply = await call.ask(message)  # a tool's request and result come in between
            print(reply.text)
        return await call.terminate()


def main() -> int:
    """``python examples/tools_chat.py MESSAGE...``."""
    if not os.environ.get("BLACKBOX_TOKEN"):
        print("set BLACKBOX_TOKEN to a web-integration token", file=sys.stderr)
        return 2
    messages = sys.argv[1:] or ["What is the weather in Paris?"]
    try:
        result = anyio.run(lambda: chat(messages))
    except bb.BlackBoxError as exc:
        print(f"the conversation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"[{result.status if result else 'ended without a result'}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
