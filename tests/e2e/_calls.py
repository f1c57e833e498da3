"""Helpers the end-to-end tests share: running a call, waiting on it and on the emulator."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from blackbox_emulator import ConversationRecord, EmulatorThread
from blackbox_protocol import Call, Event, TextReceived, connect

__all__ = ["Outcome", "assistant_said", "finished", "free_port", "run_to_the_end", "until"]


@dataclass
class Outcome:
    """What a call showed before it ended (or raised)."""

    events: list[Event] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    @property
    def call(self) -> Call:
        (call,) = self.calls
        return call


async def run_to_the_end(outcome: Outcome, token: str, server: str, **options: Any) -> None:
    """Connect and iterate until the call ends, noting the events on the way."""
    async with connect(token, server=server, **options) as call:
        outcome.calls.append(call)
        async for event in call:
            outcome.events.append(event)


def assistant_said(text: str) -> Callable[[Event], bool]:
    """A predicate accepting the assistant's text event that is exactly ``text``."""

    def predicate(event: Event) -> bool:
        return (
            isinstance(event, TextReceived) and event.source == "assistant" and event.text == text
        )

    return predicate


async def until(call: Call, predicate: Callable[[Event], bool]) -> list[Event]:
    """The events up to and including the first one ``predicate`` accepts.

    Raises:
        AssertionError: the call ended before such an event.
    """
    seen: list[Event] = []
    async for event in call:
        seen.append(event)
        if predicate(event):
            return seen
    raise AssertionError(f"the call ended before the awaited event; it yielded {seen}")


async def finished(emulator: EmulatorThread) -> list[ConversationRecord]:
    """The emulator's records once every conversation has ended (waits at most 5 s)."""
    await anyio.to_thread.run_sync(emulator.wait_until_idle, 5.0)
    return emulator.conversations


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
