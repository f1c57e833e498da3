"""Client-side tools: the agent asks this program to run a function, and uses its result.

Against the emulator's weather desk (or an agent of yours with a ``get_weather`` tool):

    blackbox emulator --script examples/agents/weather.toml --token demo-token
    BLACKBOX_SERVER=ws://127.0.0.1:8765 BLACKBOX_TOKEN=demo-token \\
        python examples/tools_chat.py "What is the weather in Paris?"
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import blackbox_protocol as bb

#: Made-up forecasts, in place of a real weather service: city to (degrees Celsius, sky).
FORECASTS = {"paris": (18, "cloudy"), "rome": (24, "sunny"), "oslo": (-3, "snowing")}


def get_weather(city: str, units: str = "metric") -> dict[str, Any]:
    """A tool: called with the request's ``args`` as keyword arguments.

    A plain function runs in a worker thread, so it may block (a database, an
    HTTP call) without stalling the conversation. What it returns must be JSON;
    what it raises reaches the agent as ``{"error": "LookupError: no forecast for X"}``.
    """
    forecast = FORECASTS.get(city.strip().lower())
    if forecast is None:
        raise LookupError(f"no forecast for {city}")
    celsius, sky = forecast
    degrees = celsius if units == "metric" else round(celsius * 9 / 5 + 32)
    return {"temperature": degrees, "sky": sky}


TOOLS: Mapping[str, bb.ToolHandler] = {"get_weather": get_weather}


async def show_reply(call: bb.Call, quiet: float) -> bool:
    """Print what happens until the agent is quiet for ``quiet`` s; False once it is over."""
    with anyio.CancelScope(deadline=anyio.current_time() + quiet) as reply:
        async for event in call:
            match event:
                case bb.TextReceived(source="assistant", text=text):
                    print(text, end="", flush=True)
                case bb.ToolRequested(name=name, args=args):  # the driver runs the tool
                    print(f"[tool {name}({args})] ", end="", flush=True)
                case bb.ToolTimedOut(name=name):  # slower than Timeouts.tool
                    print(f"[tool {name} timed out] ", end="", flush=True)
            reply.deadline = anyio.current_time() + quiet
        print()
        return False  # the iteration ended: so did the conversation
    print()
    return True


async def chat(
    messages: Sequence[str], *, tools: Mapping[str, bb.ToolHandler] = TOOLS, quiet: float = 5.0
) -> bb.ConversationResultData | None:
    """Say each message once the agent has answered the previous one; then terminate."""
    async with bb.connect(
        os.environ["BLACKBOX_TOKEN"],
        server=os.environ.get("BLACKBOX_SERVER", bb.DEFAULT_SERVER),
        tools=tools,
        timeouts=bb.Timeouts(tool=10.0),  # a tool's deadline; then the agent gets an error
    ) as call:
        going_on = await show_reply(call, quiet)  # the greeting, if the agent has one
        for message in messages:
            if not going_on:
                break
            print(f"you: {message}")
            await call.send_text(message)
            going_on = await show_reply(call, quiet)
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
