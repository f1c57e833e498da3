"""Helpers the end-to-end tests share: waiting on a call, on the emulator, for a port."""

from __future__ import annotations

import socket
from collections.abc import Callable

import anyio
from blackbox_emulator import ConversationRecord, EmulatorThread
from blackbox_protocol import Call, Event, TextReceived

__all__ = ["assistant_said", "finished", "free_port", "until"]


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
