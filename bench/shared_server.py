"""Benchmark: the emulator as a shared server, with hostile clients at it.

Each part runs against a fresh emulator in a child process (this script,
``--serve-emulator``, as ``blackbox emulator`` runs it), twice: with the
emulator's default limits, and, as the baseline, with the limits lifted to
what the emulator did before it had them (frames up to 8 Mi characters, so
websockets read up to 32 MiB; no rate limit; every record kept, whole; no
connection cap). Memory is the child's ``VmRSS`` (and its peak, ``VmHWM``)
from ``/proc``.

1. **Large frames.** Memory idle; after three connections that each send one
   30 MiB text frame (a valid ``incomingChatMessage``); after three that each
   send the largest frame the limited emulator serves (just under 1 Mi
   characters), which the agent echoes back twice; once they are all closed.
2. **A flood.** A child process floods one conversation with small chat
   messages at a target rate (10,000 a second) while this process has chat
   round trips on another (a message, then its reply's last chunk), message
   after message: the round trip's p50, p99 and maximum alone and during the
   flood, the frames the flooder sent and those it was answered, and the
   emulator's CPU seconds.
3. **Records.** Memory after N short conversations one after another (a few
   at a time): each greets, answers one message, ends.

Run ``python bench/shared_server.py`` (``nox -s bench``); ``--quick`` for a
short run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

from _emulator_child import EmulatorChild, cpu_seconds, serve_in_child, status_value
from attrs import frozen
from blackbox_emulator import Emulator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["BASELINE", "LIMITED", "main", "run"]

#: The emulator's options for each run: its defaults, and the limits lifted (the baseline).
LIMITED: Final[dict[str, Any]] = {}
BASELINE: Final[dict[str, Any]] = {
    "max_connections": None,
    "max_frame_size": 8 * 1024 * 1024,
    "max_frame_rate": None,
    "max_records": None,
    "max_record_frames": None,
    "max_record_size": None,
}
#: The environment variable that hands the child its options.
_OPTIONS_VARIABLE: Final = "BLACKBOX_BENCH_OPTIONS"
_PATH: Final = "/api/v1/ws/webCall?token="
_INITIALIZE: Final = '{"type":"initialize","request":{"callType":"chat"}}'
_TERMINATE: Final = '{"type":"terminate"}'
_BOUND: Final = 30.0
_MIB: Final = 1024.0
#: The largest chat frame the limited emulator serves (its default: 1 Mi characters).
_LARGEST: Final = 1024 * 1024 - 100
_HUGE: Final = 30 * 1024 * 1024


def _chat(text: str) -> str:
    return json.dumps({"type": "incomingChatMessage", "content": text})


# The emulator's process.


def _serve_emulator() -> int:
    """The child: an emulator with the options from the environment."""
    options = json.loads(os.environ[_OPTIONS_VARIABLE])
    return serve_in_child(lambda token: Emulator(token=token, **options))


@frozen
class _Child:
    emulator: EmulatorChild
    url: str

    @property
    def pid(self) -> int:
        return self.emulator.pid

    def memory(self) -> tuple[int, int]:
        """``VmRSS`` and ``VmHWM`` in KiB."""
        return status_value(self.pid, "VmRSS"), status_value(self.pid, "VmHWM")


async def _with_emulator(options: dict[str, Any], part: Callable[[_Child], Awaitable[Any]]) -> Any:
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryFile() as errors:
        emulator = await EmulatorChild.start(
            __file__,
            token,
            env={_OPTIONS_VARIABLE: json.dumps(options)},
            errors=errors,
            bound=_BOUND,
        )
        try:
            await asyncio.sleep(0.3)  # let it settle after printing
            return await part(_Child(emulator, f"{emulator.server}{_PATH}{token}"))
        finally:
            await emulator.stop()


# A protocol client on websockets' own, for what the SDK never sends.


async def _open(url: str) -> ClientConnection:
    """A chat conversation, its greeting read: up to the greeting's last chunk."""
    websocket = await connect(url, max_size=None, compression=None, open_timeout=_BOUND)
    await websocket.send(_INITIALIZE)
    await _until(websocket, lambda frame: "How can I help?" in frame)
    return websocket


async def _until(websocket: ClientConnection, done: Callable[[str], bool]) -> None:
    async with asyncio.timeout(_BOUND):
        while True:
            frame = await websocket.recv()
            if isinstance(frame, str) and done(frame):
                return


def _assistant_said(text: str) -> Callable[[str], bool]:
    """Whether a frame is the assistant's chunk ``text`` (the emulator's compact JSON)."""
    chunk = f'"source":"assistant","text":{json.dumps(text)}'
    return lambda frame: chunk in frame


async def _close_code(websocket: ClientConnection) -> int | None:
    """Read until the emulator closes; its close code."""
    try:
        async with asyncio.timeout(_BOUND):
            while True:
                await websocket.recv()
    except ConnectionClosed as closed:
        return None if closed.rcvd is None else closed.rcvd.code


# 1. Large frames.


@frozen
class Frames:
    """Memory in KiB (RSS, peak) at each point, and how each connection ended."""

    idle: tuple[int, int]
    after_huge: tuple[int, int]
    after_largest: tuple[int, int]
    closed: tuple[int, int]
    huge_closes: tuple[int | None, ...]
    largest_echoed: int


async def _huge(url: str) -> int | None:
    websocket = await _open(url)
    frame = _chat("x" * _HUGE)
    # Written raw (a masked frame, mask key zero): the emulator may refuse it
    # from its header while the client's library would still be sending it.
    payload = frame.encode()
    header = bytes([0x81, 0x80 | 127]) + len(payload).to_bytes(8, "big") + bytes(4)
    websocket.transport.write(header + payload)
    code = await _close_code(websocket)
    await websocket.wait_closed()
    return code


async def _largest(url: str) -> bool:
    websocket = await _open(url)
    text = "y" * (_LARGEST - 100)
    await websocket.send(_chat(text))
    try:
        await _until(websocket, lambda frame: len(frame) > len(text) and '"assistant"' in frame)
    except ConnectionClosed:
        return False
    await websocket.send(_TERMINATE)
    await _close_code(websocket)
    return True


async def _frames_part(child: _Child, sets: int) -> Frames:
    idle = child.memory()
    huge_closes = [await _huge(child.url) for _ in range(sets)]
    after_huge = child.memory()
    echoed = [await _largest(child.url) for _ in range(sets)]
    after_largest = child.memory()
    await asyncio.sleep(1.0)
    return Frames(idle, after_huge, after_largest, child.memory(), tuple(huge_closes), sum(echoed))


# 2. A flood.


@frozen
class Flood:
    """Round trips in ms alone and flooded; the flooder's counts; the emulator's CPU s."""

    alone: tuple[float, ...]
    flooded: tuple[float, ...]
    sent: int
    answered: int
    cpu_alone: float
    cpu_flooded: float


async def _flooder(url: str, rate: float, seconds: float) -> int:
    """The child's flood: small chat messages at ``rate`` for ``seconds``; prints its counts."""
    websocket = await _open(url)
    sent = answered = 0

    async def count() -> None:
        nonlocal answered
        with contextlib.suppress(ConnectionClosed):
            async for _ in websocket:
                answered += 1

    counting = asyncio.create_task(count())
    frame = _chat("flood")
    batch = max(1, round(rate / 100))
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        for _ in range(batch):
            await websocket.send(frame)
        sent += batch
        await asyncio.sleep(max(0.0, sent / rate - elapsed))
    counting.cancel()
    websocket.transport.abort()
    print(json.dumps({"sent": sent, "answered": answered}))
    return 0


async def _round_trips(url: str, seconds: float) -> list[float]:
    websocket = await _open(url)
    times: list[float] = []
    started = time.monotonic()
    number = 0
    while time.monotonic() - started < seconds:
        number += 1
        text = f"round trip {number}"
        asked = time.perf_counter()
        await websocket.send(_chat(text))
        await _until(websocket, _assistant_said(text))
        times.append((time.perf_counter() - asked) * 1000)
        await asyncio.sleep(0.01)
    await websocket.send(_TERMINATE)
    await _close_code(websocket)
    return times


async def _flood_part(child: _Child, rate: float, seconds: float) -> Flood:
    cpu = cpu_seconds(child.pid)
    alone = await _round_trips(child.url, seconds)
    cpu_alone = cpu_seconds(child.pid) - cpu
    flooder = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--flood",
        child.url,
        str(rate),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(0.5)  # its conversation opened, the flood begun
    cpu = cpu_seconds(child.pid)
    flooded = await _round_trips(child.url, seconds - 1.0)
    cpu_flooded = cpu_seconds(child.pid) - cpu
    output, _ = await flooder.communicate()
    counts = json.loads(output.decode().strip().splitlines()[-1])
    return Flood(
        tuple(alone), tuple(flooded), counts["sent"], counts["answered"], cpu_alone, cpu_flooded
    )


# 3. Records.


@frozen
class Records:
    """Memory (RSS, KiB) idle, and after each count of conversations."""

    idle: int
    after: tuple[tuple[int, int], ...]


async def _conversation(url: str) -> None:
    websocket = await _open(url)
    await websocket.send(_chat("hello"))
    await _until(websocket, _assistant_said("hello"))
    await websocket.send(_TERMINATE)
    await _close_code(websocket)


async def _records_part(child: _Child, checkpoints: Sequence[int]) -> Records:
    idle = child.memory()[0]
    after = []
    done = 0
    for checkpoint in checkpoints:
        while done < checkpoint:
            batch = min(10, checkpoint - done)
            await asyncio.gather(*(_conversation(child.url) for _ in range(batch)))
            done += batch
        await asyncio.sleep(0.3)
        after.append((done, child.memory()[0]))
    return Records(idle, tuple(after))


# The run.


def _percentile(values: Sequence[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _mib(kib: int) -> str:
    return f"{kib / _MIB:.1f}"


def _print_frames(name: str, frames: Frames) -> None:
    rows = [
        ("idle", frames.idle),
        ("after 30 MiB frames", frames.after_huge),
        ("after the largest served", frames.after_largest),
        ("all closed (1 s later)", frames.closed),
    ]
    print(
        f"  {name}: 30 MiB frames closed with {list(frames.huge_closes)};"
        f" largest frames echoed back: {frames.largest_echoed}"
    )
    for label, (rss, peak) in rows:
        print(f"    {label:<26} RSS {_mib(rss):>7} MiB   peak {_mib(peak):>7} MiB")


def _print_flood(name: str, flood: Flood) -> None:
    print(
        f"  {name}: flooder sent {flood.sent} frames, was answered {flood.answered};"
        f" emulator CPU {flood.cpu_alone:.1f} s alone, {flood.cpu_flooded:.1f} s flooded"
    )
    for label, times in (("alone", flood.alone), ("flooded", flood.flooded)):
        print(
            f"    round trip {label:<8} n={len(times):>4}  p50 {_percentile(times, 50):7.1f} ms"
            f"  p99 {_percentile(times, 99):7.1f} ms  max {max(times):7.1f} ms"
        )


def _print_records(name: str, records: Records) -> None:
    cells = "  ".join(
        f"{count}: {_mib(rss)} MiB ({(rss - records.idle) / count:.1f} KiB each)"
        for count, rss in records.after
    )
    print(f"  {name}: idle {_mib(records.idle)} MiB; after N conversations: {cells}")


async def run(*, sets: int, rate: float, seconds: float, checkpoints: Sequence[int]) -> None:
    """Run the three parts, limited and baseline, and print what they found."""
    runs = {"limited (defaults)": LIMITED, "baseline (no limits)": BASELINE}
    print(
        f"Shared server: a fresh emulator process per part and run. Python"
        f" {sys.version.split()[0]}, {os.cpu_count()} CPUs."
    )
    print(
        f"\n1. Large frames: {sets} connections with a 30 MiB frame, {sets} with the largest served"
    )
    for name, options in runs.items():
        frames = await _with_emulator(options, lambda child: _frames_part(child, sets))
        _print_frames(name, frames)
    print(f"\n2. A flood of {rate:g} frames a second for {seconds:g} s, beside chat round trips")
    for name, options in runs.items():
        flood = await _with_emulator(options, lambda child: _flood_part(child, rate, seconds))
        _print_flood(name, flood)
    print(f"\n3. Records: {checkpoints[-1]} short conversations, 10 at a time")
    for name, options in runs.items():
        records = await _with_emulator(options, lambda child: _records_part(child, checkpoints))
        _print_records(name, records)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="The emulator as a shared server.")
    parser.add_argument("--quick", action="store_true", help="a short run (some 20 s)")
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flood", nargs=3, metavar=("URL", "RATE", "S"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        return _serve_emulator()
    if args.flood:
        url, rate, seconds = args.flood
        return asyncio.run(_flooder(url, float(rate), float(seconds)))
    started = time.perf_counter()
    asyncio.run(
        run(
            sets=1 if args.quick else 3,
            rate=10_000.0,
            seconds=3.0 if args.quick else 6.0,
            checkpoints=(300, 600) if args.quick else (1000, 2000, 3000),
        )
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
