"""Benchmark: how many chat conversations one emulator process holds, and their memory.

For each step K (50, 100, 200, 400, 700, 1000 by default) a fresh emulator is
started in a separate process (this script, ``--serve-emulator``: the built-in
agent script, on loopback, port 0, without the cap on conversations at once;
it prints ``BlackBox emulator listening on ws://...`` as ``blackbox emulator``
does). Its resident memory (``VmRSS`` of
``/proc/PID/status``) is read idle; then this process opens K conversations at
once with the driver (``blackbox_protocol.connect()`` under asyncio), each
held idle once its greeting is in; memory is read again on both sides; then
every conversation sends one message and awaits the reply's first assistant
chunk, proving it alive; memory again; then all end (``terminate``) and the
emulator's memory is read once more.

A step passes when every conversation connected (greeting in) and answered
within the bound (10 s from the phase's start). The steps go up until one
fails, the cap is reached, or the file descriptor limit would be (the soft
``RLIMIT_NOFILE`` is raised to the hard one in both processes first).

Reported: for each K, how many connected and answered, the phases' times
(p50 and the slowest), the CPU seconds each process used during the step
(which side is the bottleneck), and the memory per conversation: the emulator's
``(RSS with K open - RSS idle) / K`` (a fresh process each step, so nothing
is left from the step before) and the client's, as the slope of its RSS with
K open against K across the steps (the client is one process throughout, and
freed memory is reused rather than returned, so a per-step difference would
mislead). On a 2-core machine the client side (K driver connections in one
Python process) may well be the limit, not the emulator.

Run ``python bench/chat_capacity.py`` (``nox -s bench``); ``--quick`` for a
short run (up to 100); ``--cap`` to go further (up to 4000).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from typing import Final

import anyio
import anyio.abc
from _emulator_child import EmulatorChild, cpu_seconds, raise_fd_limit, rss_kib, serve_in_child
from attrs import define, field, frozen
from blackbox_emulator import AgentScript, Emulator
from blackbox_protocol import Call, TextReceived, Timeouts, connect

__all__ = ["DEFAULT_STEPS", "Step", "main", "run"]

#: The conversations opened at each step, up to the cap.
DEFAULT_STEPS: Final = (50, 100, 200, 400, 700, 1000, 1500, 2000, 3000, 4000)
#: File descriptors kept free besides one a conversation (the interpreter, pipes, the listener).
_SPARE_FDS: Final = 64
#: Seconds for the emulator's process to start, and to stop before it is killed.
_START_BOUND: Final = 30.0
_STOP_BOUND: Final = 5.0
_MIB: Final = 1024.0


def _serve_emulator() -> int:
    """The child: an emulator with no cap on conversations (its capacity is the question)."""
    return serve_in_child(lambda token: Emulator(token=token, max_connections=None))


# One step: K conversations.


@define
class _Phase:
    """Conversations that finished a phase, well or not, and when the last one did."""

    expected: int
    ok: list[float] = field(factory=list)
    failed: dict[str, int] = field(factory=dict)
    done: anyio.Event = field(factory=anyio.Event)

    def succeed(self, seconds: float) -> None:
        self.ok.append(seconds)
        self._check()

    def fail(self, reason: str) -> None:
        self.failed[reason] = self.failed.get(reason, 0) + 1
        self._check()

    def _check(self) -> None:
        if len(self.ok) + sum(self.failed.values()) >= self.expected:
            self.done.set()


def _reason(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


async def _next_assistant_text(call: Call) -> None:
    while True:
        event = await anext(call)
        if isinstance(event, TextReceived) and event.source == "assistant":
            return


async def _hold(
    server: str,
    token: str,
    *,
    bound: float,
    started: float,
    greeting: int,
    opened: _Phase,
    answered: _Phase,
    go: anyio.Event,
    release: anyio.Event,
) -> None:
    """One conversation: connect, the greeting, idle, one exchange, idle, end."""
    phase = opened
    timeouts = Timeouts(open=bound, session=bound)
    try:
        # The scope's deadline bounds each phase; it straddles connect() whole.
        with anyio.CancelScope(deadline=started + bound) as scope:
            async with connect(token, server=server, timeouts=timeouts) as call:
                for _ in range(greeting):
                    await _next_assistant_text(call)
                opened.succeed(anyio.current_time() - started)
                scope.deadline = math.inf
                await go.wait()
                phase = answered
                asked = anyio.current_time()
                scope.deadline = asked + bound
                await call.send_text("hello")
                await _next_assistant_text(call)
                answered.succeed(anyio.current_time() - asked)
                scope.deadline = math.inf
                await release.wait()
        if scope.cancelled_caught:
            phase.fail("timeout")
    except Exception as exc:
        phase.fail(_reason(exc))


@frozen
class Step:
    """One step's outcome; memory in KiB."""

    conversations: int
    opened: tuple[float, ...]
    open_failures: dict[str, int]
    answered: tuple[float, ...]
    answer_failures: dict[str, int]
    emulator_idle: int
    emulator_open: int
    emulator_answered: int
    emulator_closed: int
    client_before: int
    client_open: int
    #: Bytes of Python objects the client allocated with K open (tracemalloc), if traced.
    client_traced: int | None
    #: Seconds from the first connect to the last conversation's end, and the CPU
    #: seconds each process used meanwhile.
    wall: float
    emulator_cpu: float
    client_cpu: float

    @property
    def passed(self) -> bool:
        """Every conversation connected and answered within the bound."""
        return len(self.opened) == len(self.answered) == self.conversations

    @property
    def emulator_per_conversation(self) -> float:
        """The emulator's KiB per open conversation (greeting in, idle)."""
        return (self.emulator_open - self.emulator_idle) / self.conversations


async def _step(conversations: int, *, bound: float, trace: bool = False) -> Step:
    token = secrets.token_urlsafe(16)
    greeting = len(AgentScript.default().greeting)
    with tempfile.TemporaryFile() as errors:
        emulator = await EmulatorChild.start(__file__, token, errors=errors, bound=_START_BOUND)
        pid = emulator.pid
        try:
            await anyio.sleep(0.2)  # let it settle after printing
            emulator_idle = rss_kib(pid)
            client_before = rss_kib(os.getpid())
            if trace:
                tracemalloc.start()
            opened, answered = _Phase(conversations), _Phase(conversations)
            go, release = anyio.Event(), anyio.Event()
            began = time.perf_counter()
            emulator_cpu, client_cpu = cpu_seconds(pid), time.process_time()
            async with anyio.create_task_group() as group:
                hold = functools.partial(
                    _hold,
                    emulator.server,
                    token,
                    bound=bound,
                    started=anyio.current_time(),
                    greeting=greeting,
                    opened=opened,
                    answered=answered,
                    go=go,
                    release=release,
                )
                for _ in range(conversations):
                    group.start_soon(hold)
                # Every conversation settles within the bound (its own deadline); the margin
                # covers the turn of the loop that reports it.
                with anyio.move_on_after(bound + 5):
                    await opened.done.wait()
                emulator_open = rss_kib(pid)
                client_open = rss_kib(os.getpid())
                client_traced = tracemalloc.get_traced_memory()[0] if trace else None
                tracemalloc.stop()  # tracing slows the client: only the opening is traced
                go.set()
                with anyio.move_on_after(bound + 5):
                    await answered.done.wait()
                emulator_answered = rss_kib(pid)
                release.set()
            wall = time.perf_counter() - began
            emulator_cpu = cpu_seconds(pid) - emulator_cpu
            client_cpu = time.process_time() - client_cpu
            await anyio.sleep(0.5)  # the emulator finishes closing
            emulator_closed = rss_kib(pid)
        except BaseException:
            sys.stderr.write(emulator.error_tail())
            raise
        finally:
            tracemalloc.stop()
            with anyio.CancelScope(shield=True):
                await emulator.stop(_STOP_BOUND)
    return Step(
        conversations=conversations,
        opened=tuple(opened.ok),
        open_failures=dict(opened.failed),
        answered=tuple(answered.ok),
        answer_failures=dict(answered.failed),
        emulator_idle=emulator_idle,
        emulator_open=emulator_open,
        emulator_answered=emulator_answered,
        emulator_closed=emulator_closed,
        client_before=client_before,
        client_open=client_open,
        client_traced=client_traced,
        wall=wall,
        emulator_cpu=emulator_cpu,
        client_cpu=client_cpu,
    )


# The report.


def _p50_max(seconds: Sequence[float], scale: float) -> str:
    if not seconds:
        return f"{'-':>7} {'-':>7}"
    return f"{statistics.median(seconds) * scale:>7.0f} {max(seconds) * scale:>7.0f}"


def _failures(failed: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason}" for reason, count in sorted(failed.items())) or "-"


def _print_tables(steps: Sequence[Step], bound: float) -> None:
    print(f"\nConversations (times in ms; a phase passes within {bound:g} s)")
    print(
        f"  {'K':>5} {'opened':>7} {'answered':>9} {'open p50':>8} {'max':>7}"
        f" {'reply p50':>10} {'max':>7} {'wall s':>7} {'CPU s emu':>9} {'client':>7}  failures"
    )
    for step in steps:
        failures = ", ".join(
            f"{phase}: {_failures(failed)}"
            for phase, failed in (("open", step.open_failures), ("reply", step.answer_failures))
            if failed
        )
        print(
            f"  {step.conversations:>5} {len(step.opened):>7} {len(step.answered):>9}"
            f" {_p50_max(step.opened, 1e3)} {' ' + _p50_max(step.answered, 1e3)}"
            f" {step.wall:>7.1f} {step.emulator_cpu:>9.1f} {step.client_cpu:>7.1f}"
            f"  {failures or '-'}"
        )
    print("\nMemory (RSS, MiB; per conversation in KiB)")
    print(
        f"  {'K':>5} {'emu idle':>9} {'K open':>8} {'answered':>9} {'closed':>8}"
        f" {'emu KiB/conv':>13} {'client before':>14} {'K open':>8}"
    )
    for step in steps:
        print(
            f"  {step.conversations:>5} {step.emulator_idle / _MIB:>9.1f}"
            f" {step.emulator_open / _MIB:>8.1f} {step.emulator_answered / _MIB:>9.1f}"
            f" {step.emulator_closed / _MIB:>8.1f} {step.emulator_per_conversation:>13.1f}"
            f" {step.client_before / _MIB:>14.1f} {step.client_open / _MIB:>8.1f}"
        )


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    if len(xs) < 2:
        return None
    return statistics.linear_regression(xs, ys).slope


def run(*, steps: Sequence[int], bound: float, traced: int = 200) -> list[Step]:
    """Run the steps in order until one fails, and print the tables.

    Args:
        steps: the numbers of conversations, ascending.
        bound: seconds each phase (open, reply) may take.
        traced: the conversations of an extra step whose client is traced
            (tracemalloc), at most the largest K that passed.

    Returns:
        The steps run (the last one may have failed).
    """
    soft, hard = raise_fd_limit()
    print(
        f"Chat capacity: one emulator process (a fresh one per step), K conversations from"
        f" this one (asyncio). Python {sys.version.split()[0]}, {os.cpu_count()} CPUs,"
        f" RLIMIT_NOFILE soft {soft} hard {hard} (both processes)."
    )
    done: list[Step] = []
    stopped = "the last step passed"
    for conversations in steps:
        if conversations + _SPARE_FDS > soft:
            stopped = f"K={conversations} would pass RLIMIT_NOFILE ({soft})"
            break
        step = anyio.run(functools.partial(_step, conversations, bound=bound))
        done.append(step)
        if not step.passed:
            stopped = f"K={conversations} failed"
            break
    _print_tables(done, bound)
    passed = [step for step in done if step.passed]
    best = max((step.conversations for step in passed), default=0)
    print(f"\nLargest K with every conversation open and answering: {best} (stopped: {stopped}).")
    if not passed:
        return done
    largest = passed[-1]
    kept = (largest.emulator_closed - largest.emulator_idle) / best
    ks = [float(step.conversations) for step in passed]
    emulator_fit = _slope(ks, [float(step.emulator_open) for step in passed])
    client_fit = _slope(ks, [float(step.client_open) for step in passed])
    print(
        f"Emulator: {largest.emulator_per_conversation:.1f} KiB a conversation at K={best}"
        " ((RSS open - RSS idle) / K)"
        + ("" if emulator_fit is None else f"; the slope over the steps {emulator_fit:.1f} KiB")
        + f"; once all closed, {kept:.1f} KiB a conversation not given back"
        " (its record, and memory Python keeps)."
    )
    traced_k = min(traced, best)
    traced_step = anyio.run(functools.partial(_step, traced_k, bound=bound, trace=True))
    assert traced_step.client_traced is not None, "a traced step"
    per_call = traced_step.client_traced / 1024 / traced_k
    fit = (
        "" if client_fit is None else f"the slope of its RSS over the steps {client_fit:.1f} KiB; "
    )
    print(
        f"Client (driver): {fit}Python objects {per_call:.1f} KiB a call"
        f" (tracemalloc, an extra step of K={traced_k}, {len(traced_step.opened)} opened)."
    )
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="Concurrent chat conversations per emulator.")
    parser.add_argument("--quick", action="store_true", help="a short run (K up to 100)")
    parser.add_argument(
        "--cap", type=int, help="the largest K tried (default 1000, quick 100; at most 4000)"
    )
    parser.add_argument(
        "--bound", type=float, default=10.0, help="seconds each phase may take (default 10)"
    )
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        return _serve_emulator()
    cap: int = args.cap or (100 if args.quick else 1000)
    started = time.perf_counter()
    run(
        steps=[k for k in DEFAULT_STEPS if k <= cap],
        bound=args.bound,
        traced=50 if args.quick else 200,
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
