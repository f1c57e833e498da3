"""Benchmark: long runs, one client process against one emulator process. Does anything leak?

The emulator runs in a separate process (this script, ``--serve-emulator``:
``Emulator()`` with its defaults and the built-in agent, on loopback, port 0).
This process then runs, one phase after another:

1. ``chats`` sequential chat conversations (``connect()``, ``send_text``, the
   first agent text, ``terminate()``);
2. ``calls`` sequential voice calls (``call_type="webCall"``,
   ``FileSession(clip, record=...)``: a tone played as the caller, the agent
   recorded to a WAV, the call ended once the agent's first audio frame came);
3. ``concurrent_chats`` chat conversations at once;
4. ``concurrent_calls`` voice calls at once.

Between and within the phases it samples both processes: open file
descriptors (``/proc/PID/fd``), threads and RSS (``/proc/PID/status``), and the
event loop's tasks (``asyncio.all_tasks()``; the emulator's process reports
its own on request, after a ``gc.collect()``, as this one does before each
sample). It prints the figures at the start and the end of each phase, the
growth per conversation after a warm-up (the first quarter of a sequential
phase, at least 10: a voice call's first few dozen still fill the allocator's
and the codecs' pools), and the successes and the errors by type.

Run ``python bench/soak.py`` (``nox -s bench``); ``--quick`` for a short run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

import anyio
from _emulator_child import (
    EmulatorChild,
    open_fds,
    raise_fd_limit,
    rss_kib,
    serve_in_child,
    status_value,
)
from attrs import define, field, frozen
from blackbox_emulator import Emulator
from blackbox_media_file import FileSession
from blackbox_protocol import TextReceived, Timeouts, connect
from voice_setup import write_tone

__all__ = ["Sample", "main", "run"]

#: Every wait of a conversation, so that a stuck one is an error, not a hang.
_TIMEOUTS: Final = Timeouts(open=20, session=20, offer=20, terminate=20, close=10)
_CALL_BOUND: Final = 60.0


# The emulator's process.


def _serve_emulator() -> int:
    """The child: the emulator with its defaults, reporting its tasks and records when asked."""
    return serve_in_child(
        lambda token: Emulator(token=token),
        report=lambda emulator: {
            "tasks": len(asyncio.all_tasks()),
            "records": len(emulator.conversations),
        },
    )


# What is sampled.


@frozen
class Figures:
    """One process at one moment."""

    fds: int
    threads: int
    rss_kib: int
    tasks: int

    def row(self) -> str:
        return f"{self.fds:>5} {self.threads:>4} {self.rss_kib / 1024:>8.1f} {self.tasks:>6}"


@frozen
class Sample:
    """Both processes, after ``done`` conversations of a phase."""

    done: int
    client: Figures
    emulator: Figures
    records: int


async def _sample(emulator: EmulatorChild, done: int) -> Sample:
    gc.collect()
    pid = os.getpid()
    client = Figures(
        open_fds(pid), threading.active_count(), rss_kib(pid), len(asyncio.all_tasks())
    )
    child = emulator.pid
    reported = await emulator.ask()
    server = Figures(
        open_fds(child), status_value(child, "Threads"), rss_kib(child), reported["tasks"]
    )
    return Sample(done, client, server, reported["records"])


# The conversations.


async def _chat(server: str, token: str) -> None:
    async with connect(token, server=server, timeouts=_TIMEOUTS) as call:
        await call.send_text("hello")
        async for event in call:
            if isinstance(event, TextReceived) and event.source == "assistant":
                break
        await call.terminate()


async def _voice(server: str, token: str, clip: Path, recording: Path) -> None:
    session = FileSession(clip, record=recording)
    async with connect(
        token, server=server, call_type="webCall", media=session, timeouts=_TIMEOUTS
    ) as call:
        async for _ in session.received_audio():
            break
        await call.terminate()
    recording.unlink()


@define
class Phase:
    """One phase's outcome and its samples."""

    name: str
    count: int
    seconds: float = 0.0
    succeeded: int = 0
    errors: Counter[str] = field(factory=Counter)
    samples: list[Sample] = field(factory=list)


async def _attempt(
    phase: Phase, conversation: Callable[[int], Awaitable[None]], number: int
) -> None:
    try:
        with anyio.fail_after(_CALL_BOUND):
            await conversation(number)
    except Exception as exc:
        phase.errors[type(exc).__name__] += 1
    else:
        phase.succeeded += 1


async def _sequential(
    phase: Phase, conversation: Callable[[int], Awaitable[None]], emulator: EmulatorChild
) -> None:
    warm = _warm_up(phase)
    phase.samples.append(await _sample(emulator, 0))
    every = max(1, phase.count // 10)
    for number in range(1, phase.count + 1):
        await _attempt(phase, conversation, number)
        if number == warm or number % every == 0 or number == phase.count:
            phase.samples.append(await _sample(emulator, number))


async def _concurrent(
    phase: Phase, conversation: Callable[[int], Awaitable[None]], emulator: EmulatorChild
) -> None:
    phase.samples.append(await _sample(emulator, 0))
    async with anyio.create_task_group() as group:
        for number in range(1, phase.count + 1):
            group.start_soon(_attempt, phase, conversation, number)
    phase.samples.append(await _sample(emulator, phase.count))


def _warm_up(phase: Phase) -> int:
    """How many conversations of a sequential phase are its warm-up."""
    return max(10, phase.count // 4)


def _growth(phase: Phase) -> str:
    """RSS growth per conversation after the warm-up, both processes."""
    warm = _warm_up(phase)
    after = [s for s in phase.samples if s.done >= warm]
    if len(after) < 2 or after[-1].done == after[0].done:
        return ""
    n = after[-1].done - after[0].done
    client = (after[-1].client.rss_kib - after[0].client.rss_kib) / n
    server = (after[-1].emulator.rss_kib - after[0].emulator.rss_kib) / n
    fds = after[-1].client.fds - after[0].client.fds, after[-1].emulator.fds - after[0].emulator.fds
    threads = (
        after[-1].client.threads - after[0].client.threads,
        after[-1].emulator.threads - after[0].emulator.threads,
    )
    return (
        f"  after the warm-up ({after[0].done} to {after[-1].done}): RSS growth per"
        f" conversation: client {client:+.2f} KiB, emulator {server:+.2f} KiB;"
        f" fds {fds[0]:+d} / {fds[1]:+d}, threads {threads[0]:+d} / {threads[1]:+d}"
    )


def _report(phase: Phase) -> None:
    errors = ", ".join(f"{kind} {n}" for kind, n in sorted(phase.errors.items())) or "none"
    print(
        f"\n{phase.name}: {phase.succeeded}/{phase.count} succeeded in {phase.seconds:.1f} s;"
        f" errors: {errors}"
    )
    print(
        f"  {'done':>5} | {'client: fds':>11} {'thr':>4} {'RSS MiB':>8} {'tasks':>6}"
        f" | {'emulator: fds':>13} {'thr':>4} {'RSS MiB':>8} {'tasks':>6} {'records':>7}"
    )
    for sample in phase.samples:
        print(
            f"  {sample.done:>5} |       {sample.client.row()} |         {sample.emulator.row()}"
            f" {sample.records:>7}"
        )
    growth = _growth(phase)
    if growth:
        print(growth)


async def _run(chats: int, calls: int, concurrent_chats: int, concurrent_calls: int) -> list[Phase]:
    raise_fd_limit()
    token = secrets.token_urlsafe(16)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_tone(Path(tmp) / "tone.wav", 3.0)
        emulator = await EmulatorChild.start(__file__, token)
        server = emulator.server

        async def chat(_: int) -> None:
            await _chat(server, token)

        async def voice(number: int) -> None:
            await _voice(server, token, clip, Path(tmp) / f"call-{number}.wav")

        try:
            for name, count, run_phase, conversation in (
                ("sequential chats", chats, _sequential, chat),
                ("sequential voice calls", calls, _sequential, voice),
                ("concurrent chats", concurrent_chats, _concurrent, chat),
                ("concurrent voice calls", concurrent_calls, _concurrent, voice),
            ):
                phase = Phase(name, count)
                started = time.monotonic()
                await run_phase(phase, conversation, emulator)
                phase.seconds = time.monotonic() - started
                phases.append(phase)
                _report(phase)
        finally:
            await emulator.stop()
    return phases


def run(*, chats: int, calls: int, concurrent_chats: int, concurrent_calls: int) -> list[Phase]:
    """Run the four phases, printing each one's figures."""
    print(
        f"Soak: one client process against one emulator process (defaults, built-in agent),"
        f" loopback. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs."
    )
    phases = anyio.run(_run, chats, calls, concurrent_chats, concurrent_calls, backend="asyncio")
    total = sum(p.count for p in phases)
    succeeded = sum(p.succeeded for p in phases)
    print(f"\n{succeeded}/{total} conversations succeeded.")
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="Long runs: fds, threads, RSS and tasks.")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        return _serve_emulator()
    started = time.perf_counter()
    if args.quick:
        run(chats=100, calls=20, concurrent_chats=50, concurrent_calls=8)
    else:
        run(chats=1000, calls=200, concurrent_chats=200, concurrent_calls=30)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
