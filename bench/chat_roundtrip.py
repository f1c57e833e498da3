"""Benchmark: a chat message's round trip through the emulator, against a bare WebSocket echo.

The figure is the time from ``Call.send_text(text)`` to the first assistant
``TextReceived`` chunk of the reply (the emulator's script echoes nothing back
as ``source: user`` and paces nothing: ``chunk_delay`` 0; and it reads frames
without its rate limit), message after message in one conversation. Beside
it, in the same run and the same topology (each server on its own asyncio
loop in a daemon thread of this process, the client on the main thread's loop):

- **driver -> emulator**: ``blackbox_protocol.connect()``, the figure itself.
- **websockets -> emulator**: websockets' own client speaking the protocol's
  frames by hand to the same emulator: the emulator's share without the
  driver's (the driver's own cost is the difference).
- **websockets echo**: websockets' client and an echo server (websockets'
  asyncio server), a text frame of the chat message's size sent and its echo
  awaited: the floor any Python WebSocket round trip pays on this machine.

The three take turns message by message (the order rotating) on three
connections open at once, so a change in the machine's speed touches them
alike. The client runs under asyncio and under trio (anyio's backends; the
websockets client is its asyncio or its trio one); every conversation is a
new connection, the two backends taking turns, round after round. The
baseline clients do not negotiate compression, as the driver does not.

Each path's table gives the median (p50), p90 and p99 of every message's round
trip, in ms, and its ratio to the echo's, with ``(paired x)``: the median over
the messages of the path's time over the echo timed next to it. The garbage
collector runs as usual (a pause lands in the tail, as it would in an app).

Run ``python bench/chat_roundtrip.py`` (``nox -s bench``); ``--quick`` for a
short run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Final, Self

import anyio
import websockets.asyncio.client
import websockets.asyncio.server
import websockets.trio.client
from attrs import frozen
from blackbox_emulator import AgentScript, Emulator, EmulatorThread
from blackbox_protocol import Call, ClientConnection, TextReceived, connect

__all__ = [
    "BACKENDS",
    "PATHS",
    "EchoServerThread",
    "Figure",
    "bench_script",
    "main",
    "run",
]

#: The anyio backends the client runs under, in the tables' order.
BACKENDS: Final = ("asyncio", "trio")
#: The measured paths, the baseline last.
PATHS: Final = ("driver -> emulator", "websockets -> emulator", "websockets echo")
_BASELINE: Final = PATHS[-1]
#: What the user says, every message (the reply's first chunk does not depend on it).
_TEXT: Final = "hi I'd like to book a haircut on Tuesday at ten"
#: The agent's reply: two chunks, the first one timed; the second drained before the next send.
_REPLY: Final = ("You said: ", "{text}")
#: Any single wait longer than this is a failure, not a figure.
_BOUND: Final = 10.0


def bench_script() -> AgentScript:
    """The emulator's agent: one greeting chunk, no echo, no pacing, a two-chunk reply."""
    return AgentScript(greeting=("Hello.",), echo_user=False, chunk_delay=0.0, default_reply=_REPLY)


def _wire_frames(text: str) -> tuple[str, str]:
    """The ``initialize`` and ``incomingChatMessage`` frames the driver would send."""
    connection = ClientConnection()
    connection.initialize("chat", now=time.time())
    [initialize] = connection.frames_to_send()
    connection.receive_frame(
        json.dumps({"type": "event", "name": "connection", "data": {"jobId": "bench"}}),
        now=time.time(),
    )
    connection.events_received()
    connection.send_text(text, now=time.time())
    [chat] = connection.frames_to_send()
    return initialize, chat


class EchoServerThread:
    """A websockets asyncio echo server on loopback, on its own loop in a daemon thread.

    The same topology as ``EmulatorThread``; a (sync) context manager whose
    start and stop are bounded.
    """

    def __init__(self) -> None:
        self._thread = threading.Thread(target=self._main, name="bench-echo", daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._port = 0
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The echo server's ``ws://`` URL."""
        return f"ws://127.0.0.1:{self._port}/"

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._started.wait(_BOUND):
            raise TimeoutError(f"the echo server did not start within {_BOUND:g} s")
        if self._failure is not None:
            raise self._failure
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop, stopping = self._loop, self._stopping
        if self._thread.is_alive() and loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        self._thread.join(_BOUND)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to __enter__, not lost in the thread
            self._failure = exc
        finally:
            self._started.set()

    async def _serve(self) -> None:
        async def echo(websocket: websockets.asyncio.server.ServerConnection) -> None:
            async for message in websocket:
                await websocket.send(message)

        self._stopping = asyncio.Event()
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0) as server:
            self._port = server.sockets[0].getsockname()[1]
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await self._stopping.wait()


#: One round trip: returns its nanoseconds.
RoundTrip = Callable[[], Awaitable[int]]
Send = Callable[[str], Awaitable[None]]
Receive = Callable[[], Awaitable[str | bytes]]


def _is_assistant_text(frame: str | bytes) -> bool:
    message: Any = json.loads(frame)
    return (
        isinstance(message, dict)
        and message.get("type") == "text"
        and message.get("content", {}).get("source") == "assistant"
    )


async def _next_assistant_event(call: Call) -> None:
    while True:
        event = await anext(call)
        if isinstance(event, TextReceived) and event.source == "assistant":
            return


def _driver_round_trip(call: Call) -> RoundTrip:
    async def round_trip() -> int:
        start = time.perf_counter_ns()
        await call.send_text(_TEXT)
        await _next_assistant_event(call)
        elapsed = time.perf_counter_ns() - start
        for _ in _REPLY[1:]:
            await _next_assistant_event(call)
        return elapsed

    return round_trip


async def _next_assistant_frame(receive: Receive) -> None:
    while not _is_assistant_text(await receive()):
        pass


def _raw_round_trip(send: Send, receive: Receive, chat_frame: str) -> RoundTrip:
    async def round_trip() -> int:
        start = time.perf_counter_ns()
        await send(chat_frame)
        await _next_assistant_frame(receive)
        elapsed = time.perf_counter_ns() - start
        for _ in _REPLY[1:]:
            await _next_assistant_frame(receive)
        return elapsed

    return round_trip


def _echo_round_trip(send: Send, receive: Receive, frame: str) -> RoundTrip:
    async def round_trip() -> int:
        start = time.perf_counter_ns()
        await send(frame)
        await receive()
        return time.perf_counter_ns() - start

    return round_trip


@asynccontextmanager
async def _websocket(backend: str, url: str) -> AsyncIterator[tuple[Send, Receive]]:
    """websockets' client for ``backend``: its ``send`` and ``recv``."""
    options: dict[str, Any] = {"compression": None, "proxy": None, "open_timeout": _BOUND}
    if backend == "trio":
        async with websockets.trio.client.connect(url, **options) as trio_socket:
            yield trio_socket.send, trio_socket.recv
    else:
        async with websockets.asyncio.client.connect(url, **options) as asyncio_socket:
            yield asyncio_socket.send, asyncio_socket.recv


async def _conversation(
    backend: str, emulator: EmulatorThread, echo_url: str, messages: int, warmup: int
) -> dict[str, list[int]]:
    """One conversation per path, open at once; the paths take turns, message by message."""
    initialize, chat_frame = _wire_frames(_TEXT)
    async with AsyncExitStack() as stack:
        # Each opening is bounded by its own timeouts (Timeouts, open_timeout); a
        # fail_after around them would straddle connect()'s task group.
        call = await stack.enter_async_context(connect(emulator.token, server=emulator.server))
        send, receive = await stack.enter_async_context(
            _websocket(backend, emulator.url_for(emulator.token))
        )
        echo_send, echo_receive = await stack.enter_async_context(_websocket(backend, echo_url))
        with anyio.fail_after(_BOUND):
            await _next_assistant_event(call)  # the greeting
            await send(initialize)
            await _next_assistant_frame(receive)
        round_trips: dict[str, RoundTrip] = {
            PATHS[0]: _driver_round_trip(call),
            PATHS[1]: _raw_round_trip(send, receive, chat_frame),
            PATHS[2]: _echo_round_trip(echo_send, echo_receive, chat_frame),
        }
        samples: dict[str, list[int]] = {path: [] for path in PATHS}
        for number in range(warmup + messages):
            turn = number % len(PATHS)
            for path in PATHS[turn:] + PATHS[:turn]:
                with anyio.fail_after(_BOUND):
                    elapsed = await round_trips[path]()
                if number >= warmup:
                    samples[path].append(elapsed)
        return samples


@frozen
class Figure:
    """One path's round trips under one backend, in nanoseconds, in order."""

    backend: str
    path: str
    nanoseconds: tuple[int, ...]

    def percentile(self, p: int) -> float:
        """The ``p``-th percentile in ms (1 <= p <= 99)."""
        return statistics.quantiles(self.nanoseconds, n=100, method="inclusive")[p - 1] / 1e6


def _paired_ratio(figure: Figure, baseline: Figure) -> float:
    pairs = zip(figure.nanoseconds, baseline.nanoseconds, strict=True)
    return statistics.median(mine / theirs for mine, theirs in pairs)


def _print_table(backend: str, figures: Sequence[Figure], conversations: int) -> None:
    baseline = next(figure for figure in figures if figure.path == _BASELINE)
    print(
        f"\nClient under {backend}: {len(baseline.nanoseconds)} round trips a path"
        f" ({conversations} conversations)"
    )
    print(
        f"  {'path':<24} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
        f" {'x echo p50':>11} {'x echo p99':>11} {'(paired x)':>11}"
    )
    for figure in figures:
        p50, p90, p99 = (figure.percentile(p) for p in (50, 90, 99))
        print(
            f"  {figure.path:<24} {p50:>8.3f} {p90:>8.3f} {p99:>8.3f}"
            f" {p50 / baseline.percentile(50):>10.2f}x {p99 / baseline.percentile(99):>10.2f}x"
            f" {_paired_ratio(figure, baseline):>10.2f}x"
        )


def run(*, conversations: int, messages: int, warmup: int) -> list[Figure]:
    """Measure everything and print the tables.

    Args:
        conversations: conversations a path under each backend (the backends take turns).
        messages: messages timed in each conversation.
        warmup: messages sent first in each conversation, not timed.

    Returns:
        One figure per backend and path.
    """
    _, chat_frame = _wire_frames(_TEXT)
    print(
        f"Chat round trip: send_text to the reply's first assistant chunk; {messages} messages"
        f" a conversation after {warmup} untimed. Python {sys.version.split()[0]}."
    )
    print(
        f"Frames: the chat message {len(chat_frame.encode())} B (the echo sends the same);"
        " the emulator and the echo server each in a thread of this process, the client on"
        " the main thread."
    )
    samples: dict[tuple[str, str], list[int]] = {
        (backend, path): [] for backend in BACKENDS for path in PATHS
    }
    # Message after message at full speed: past the default rate limit (100 a second).
    emulator = EmulatorThread(Emulator(script=bench_script(), max_frame_rate=None))
    with emulator, EchoServerThread() as echo:
        for number in range(conversations):
            order = BACKENDS if number % 2 == 0 else BACKENDS[::-1]
            for backend in order:
                gc.collect()
                found = anyio.run(
                    _conversation, backend, emulator, echo.url, messages, warmup, backend=backend
                )
                for path, nanoseconds in found.items():
                    samples[backend, path].extend(nanoseconds)
    figures = [Figure(backend, path, tuple(times)) for (backend, path), times in samples.items()]
    for backend in BACKENDS:
        _print_table(
            backend, [figure for figure in figures if figure.backend == backend], conversations
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="A chat round trip through the emulator.")
    parser.add_argument("--quick", action="store_true", help="a short run (a few seconds)")
    parser.add_argument(
        "--conversations", type=int, help="conversations a path and backend (default 4, quick 2)"
    )
    parser.add_argument(
        "--messages", type=int, help="messages timed a conversation (default 1000, quick 200)"
    )
    args = parser.parse_args(argv)
    conversations: int = args.conversations or (2 if args.quick else 4)
    messages: int = args.messages or (200 if args.quick else 1000)
    started = time.perf_counter()
    run(conversations=conversations, messages=messages, warmup=20)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
