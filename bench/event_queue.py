"""Benchmark: a call nobody reads keeps its memory flat however many events come.

The driver's queue of unread events is bounded (``connect(max_events=...)``):
past the bound the oldest events are dropped and counted. This measures it.
A raw BlackBox server (websockets' asyncio server and ``json``, no SDK code)
runs in a child process (this script, ``--serve-emulator``, started by
``_emulator_child.EmulatorChild``, so that its memory is not the client's):
after ``initialize`` it sends ``event connection``, then, each time the client
process asks (one line on its stdin), a batch of ``text`` frames as fast as
the client takes them, then a WebSocket ping. The pong comes back once the
driver has read the socket up to the ping, so when the child answers
(``{"sent": N, "seconds": S}``) the driver has received N frames but at most
one read's worth (64 KiB), and those it handles before the sample is taken
(every task blocked, then ``gc.collect()``). The child never sends while the
client samples. After the last batch it sends ``conversationResult`` and
closes (1000).

The client is the real driver, ``async with connect(token, server=url,
max_events=1000) as call:``, which never iterates the call until the result
has come. After each batch its memory is sampled: the size of the Python
objects alive (``tracemalloc``, started before the connection) and the
resident memory (``VmRSS`` of ``/proc/self/status``). Then it reads what the
queue kept, which must be ``EventsDropped`` (the count of what it dropped),
the newest 1,000 texts and ``ConversationEnded``.

Beside it, in the same run, the same flood in the same process:

- **reads every event**: a consumer iterating the call all along (the bound is
  never reached): the driver's own memory without a backlog;
- **never reads, no bound reached** (``max_events`` above the flood): what the
  queue would hold were it not bounded, proving that the samples do see growth.

Each run is a new connection to the same child. The table gives, for each
sample, the frames received, the traced and resident KiB, and the batch's
frames per second (the child's send time, to the pong; tracing slows the
client); then the growth from the end of the warm-up (the first sample at
2,000 frames or more, the queue full for a while: 10,000 in the full run,
2,000 in the quick one) to the last sample, per 10,000 events. The goal: a
call nobody reads grows its traced memory by under 64 KiB per 10,000 events
after the warm-up; the last line says ``ok`` or ``over``. The resident memory
is shown, not judged: it moves by allocator pages and arenas, not by objects.

Run ``python bench/event_queue.py`` (``nox -s bench``): 100,000 events sampled
every 10,000; ``--quick``: 20,000 sampled every 2,000.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import secrets
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import anyio
from _emulator_child import TOKEN_VARIABLE, EmulatorChild, rss_kib
from attrs import define, field, frozen
from blackbox_protocol import (
    Call,
    Connected,
    ConversationEnded,
    Event,
    EventsDropped,
    ReplyEnded,
    ReplyStarted,
    TextReceived,
    connect,
)
from blackbox_protocol.turns import MAX_TURN_CHUNKS
from websockets.asyncio.server import ServerConnection, serve

__all__ = ["GOAL_KIB_PER_10K", "MAX_EVENTS", "WARM_UP", "Run", "Sample", "Tally", "main", "run"]

#: The bound on a call nobody reads: traced KiB of growth per 10,000 events after the warm-up.
GOAL_KIB_PER_10K: Final = 64.0
#: The driver's bound in the measured run (``connect()``'s default).
MAX_EVENTS: Final = 1000
#: The warm-up: frames received before the first sample that counts, once every
#: bound is full: the queue, and the one reply's turn (``MAX_TURN_CHUNKS`` chunks kept).
WARM_UP: Final = MAX_EVENTS + MAX_TURN_CHUNKS
#: The shortest flood: samples after the warm-up to draw a line through.
MIN_EVENTS: Final = 2 * WARM_UP
#: The environment variables that hand the flood's size to the child.
_EVENTS_VARIABLE: Final = "BLACKBOX_BENCH_EVENTS"
_BATCH_VARIABLE: Final = "BLACKBOX_BENCH_BATCH"
#: Seconds: for the child's answer to a batch, for a whole run, for the client to settle.
_BATCH_BOUND: Final = 120.0
_RUN_BOUND: Final = 900.0
_SETTLE_BOUND: Final = 10.0
#: The reply pause: longer than any run, so the flood is one reply (its turn bounded).
_ONE_REPLY: Final = 3600.0


# The child: a raw flood server.


def _frame(kind: str, timestamp: str, **payload: Any) -> str:
    return json.dumps({"type": kind, "timestamp": timestamp, "channelId": None, **payload})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _serve_flood() -> int:
    """The child: serve floods, one connection at a time, a batch per line of stdin."""
    token = os.environ[TOKEN_VARIABLE]
    events = int(os.environ[_EVENTS_VARIABLE])
    batch = int(os.environ[_BATCH_VARIABLE])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_flood_server(token, events, batch))
    return 0


async def _flood_server(token: str, events: int, batch: int) -> None:
    opened: asyncio.Queue[ServerConnection] = asyncio.Queue()
    job_ids = itertools.count(1)

    async def handler(websocket: ServerConnection) -> None:
        request = websocket.request
        query = parse_qs(urlsplit(request.path).query) if request is not None else {}
        if query.get("token") != [token]:
            await websocket.send(_frame("error", _now(), data={"message": "Invalid token"}))
            await websocket.close(1008, "Invalid token")
            return
        initialize = json.loads(await asyncio.wait_for(websocket.recv(), 10))
        assert initialize["type"] == "initialize", initialize
        data = {"jobId": f"flood-{next(job_ids)}"}
        await websocket.send(_frame("event", _now(), name="connection", data=data))
        await opened.put(websocket)
        await websocket.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        # The line EmulatorChild waits for: the URL to connect to.
        sys.stdout.write(f"BlackBox emulator listening on ws://127.0.0.1:{port}\n")
        sys.stdout.flush()
        websocket: ServerConnection | None = None
        sent = 0
        while await asyncio.to_thread(sys.stdin.readline):
            if websocket is None:
                websocket = await asyncio.wait_for(opened.get(), _BATCH_BOUND)
                sent = 0
            answer: dict[str, Any]
            if sent >= events:
                result = {"status": "Completed", "errorMessage": None}
                await websocket.send(_frame("conversationResult", _now(), result=result))
                await websocket.close(1000, "")
                websocket = None
                answer = {"sent": sent, "ended": True}
            else:
                began = time.perf_counter()
                stamp = _now()
                for number in range(sent, min(sent + batch, events)):
                    content = {"source": "assistant", "text": str(number)}
                    await websocket.send(_frame("text", stamp, content=content))
                    sent += 1
                await asyncio.wait_for(await websocket.ping(), _BATCH_BOUND)
                answer = {"sent": sent, "seconds": time.perf_counter() - began}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


# The client.


@frozen
class Sample:
    """The client after ``frames`` text frames were received."""

    frames: int
    traced_kib: float
    rss_kib: int
    #: The last batch's frames per second (the child's send time, to the pong); 0 before any.
    rate: float


@define
class Tally:
    """What a consumer read, counted as it went (keeping the events would be a backlog).

    The flood's order is ``Connected``, ``ReplyStarted``, then text ``n`` as
    its event ``n + 2``, and ``ReplyEnded`` when the result ends the one reply
    (the reply pause is longer than the run): ``position`` follows it, each
    event read or counted by an ``EventsDropped``.
    """

    events: int = 0
    dropped: int = 0
    texts: int = 0
    #: The number of the first text read.
    first_text: int | None = None
    #: The flood's next event, by its place in the flood.
    position: int = 0
    #: Every event read was the one at ``position``.
    in_order: bool = True
    first: type[Event] | None = None
    last: type[Event] | None = None

    def add(self, event: Event) -> None:
        self.events += 1
        self.first = self.first or type(event)
        self.last = type(event)
        match event:
            case EventsDropped(count=count):
                self.dropped += count
                self.position += count
            case Connected():
                self.in_order &= self.position == 0
                self.position += 1
            case ReplyStarted():
                self.in_order &= self.position == 1
                self.position += 1
            case ReplyEnded():
                self.position += 1
            case TextReceived(text=text):
                self.in_order &= int(text) + 2 == self.position
                self.position += 1
                self.texts += 1
                if self.first_text is None:
                    self.first_text = int(text)


@define
class Run:
    """One flood: how the client consumed it, and its samples."""

    title: str
    max_events: int
    reads: bool
    samples: list[Sample] = field(factory=list)
    #: What the client read: every event (``reads``), or what the queue kept at the end.
    read: Tally = field(factory=lambda: Tally())

    def warm(self) -> Sample:
        """The first sample after the warm-up."""
        return next(s for s in self.samples if s.frames >= WARM_UP)

    def growth_per_10k(self) -> tuple[float, float]:
        """Traced and resident KiB per 10,000 frames, from the warm-up's end to the last sample."""
        first, last = self.warm(), self.samples[-1]
        per = (last.frames - first.frames) / 10_000
        return (last.traced_kib - first.traced_kib) / per, (last.rss_kib - first.rss_kib) / per


async def _settle() -> None:
    """Let the driver handle every frame it has, then collect, so that the sample is fair."""
    with anyio.fail_after(_SETTLE_BOUND):
        await anyio.wait_all_tasks_blocked()
    gc.collect()


def _sample(frames: int, rate: float) -> Sample:
    traced, _ = tracemalloc.get_traced_memory()
    return Sample(frames, traced / 1024, rss_kib(os.getpid()), rate)


async def _read_all(call: Call, read: Tally) -> None:
    async for event in call:
        read.add(event)


async def _flood(child: EmulatorChild, token: str, flood: Run) -> None:
    """One connection: batches until the child ends the conversation, a sample after each."""
    async with (
        # One reply for the whole flood: the pause outlasts the run.
        connect(
            token, server=child.server, max_events=flood.max_events, reply_pause=_ONE_REPLY
        ) as call,
        anyio.create_task_group() as group,
    ):
        if flood.reads:
            group.start_soon(_read_all, call, flood.read)
        await _settle()
        flood.samples.append(_sample(0, 0.0))
        while True:
            answer = await child.ask()
            if answer.get("ended"):
                break
            await _settle()
            batch = answer["sent"] - flood.samples[-1].frames
            flood.samples.append(_sample(answer["sent"], batch / answer["seconds"]))
        if not flood.reads:
            await _read_all(call, flood.read)


def _check(flood: Run, events: int) -> str:
    """Prove the run consumed the flood as it should; say what was read.

    Raises:
        AssertionError: an event is missing, uncounted or out of place.
    """
    read = flood.read
    assert read.in_order, read
    assert read.position == events + 3, read  # every event read or counted
    assert read.last is ConversationEnded, read
    if not flood.reads and flood.max_events < events:
        # The queue kept the newest: the last texts, and the reply's end.
        kept = flood.max_events - 1
        assert read.first is EventsDropped, read
        assert (read.texts, read.first_text) == (kept, events - kept), read
    return f"read {read.events:,} events: {read.texts:,} texts, {read.dropped:,} counted as dropped"


def _print_run(flood: Run, events: int) -> None:
    print(f"\n{flood.title} (max_events={flood.max_events:,}): {_check(flood, events)}")
    print(f"  {'frames':>8} {'traced KiB':>11} {'RSS KiB':>9} {'frames/s':>9}")
    for sample in flood.samples:
        rate = f"{sample.rate:>9,.0f}" if sample.rate else f"{'':>9}"
        print(f"  {sample.frames:>8,} {sample.traced_kib:>11,.0f} {sample.rss_kib:>9,} {rate}")
    first, last = flood.warm(), flood.samples[-1]
    traced, resident = flood.growth_per_10k()
    print(
        f"  growth {first.frames:,} -> {last.frames:,}:"
        f" traced {last.traced_kib - first.traced_kib:+,.0f} KiB ({traced:+,.1f} KiB per 10k),"
        f" RSS {last.rss_kib - first.rss_kib:+,} KiB ({resident:+,.1f} KiB per 10k)"
    )


async def _run(events: int, batch: int) -> list[Run]:
    token = secrets.token_urlsafe(16)
    env = {_EVENTS_VARIABLE: str(events), _BATCH_VARIABLE: str(batch)}
    floods = [
        Run("Never reads", MAX_EVENTS, reads=False),
        Run("Baseline: reads every event", MAX_EVENTS, reads=True),
        Run("Baseline: never reads, no bound reached", events + 10, reads=False),
    ]
    child = await EmulatorChild.start(__file__, token, env=env)
    try:
        for flood in floods:
            with anyio.fail_after(_RUN_BOUND):
                await _flood(child, token, flood)
    finally:
        with anyio.CancelScope(shield=True):
            await child.stop()
    return floods


def run(*, events: int, batch: int, backend: str = "asyncio") -> list[Run]:
    """Run the three floods, print their tables and the verdict on the first.

    Args:
        events: text frames in each flood.
        batch: frames between two samples.
        backend: anyio's backend for the client, ``asyncio`` or ``trio``.

    Returns:
        The runs, the measured one first.
    """
    print(
        f"A flood of {events:,} text frames from a raw server in a child process, the driver"
        f" on {backend}, sampled every {batch:,} frames (tracemalloc on)."
        f" Python {sys.version.split()[0]}."
    )
    started = time.perf_counter()
    tracemalloc.start()
    try:
        floods = anyio.run(_run, events, batch, backend=backend)
    finally:
        tracemalloc.stop()
    for flood in floods:
        _print_run(flood, events)
    traced, _ = floods[0].growth_per_10k()
    verdict = "ok" if traced < GOAL_KIB_PER_10K else "over"
    print(
        f"\nGoal: a call nobody reads grows under {GOAL_KIB_PER_10K:g} KiB (traced) per 10k"
        f" events after the warm-up: {traced:+.1f} KiB per 10k."
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    print(verdict)
    return floods


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="The memory of a call nobody reads.")
    parser.add_argument("--quick", action="store_true", help="a short run (20,000 events)")
    parser.add_argument("--events", type=int, help="frames a flood (default 100,000, quick 20,000)")
    parser.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="the client's backend"
    )
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        return _serve_flood()
    events: int = args.events or (20_000 if args.quick else 100_000)
    if events < MIN_EVENTS:
        parser.error(f"--events must be {MIN_EVENTS:,} or more (the warm-up is {WARM_UP:,})")
    run(events=events, batch=max(1, events // 10), backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
