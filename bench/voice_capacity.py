"""Benchmark: CPU per concurrent file-backed voice call, and how many calls one core sustains.

The emulator runs in a separate process (this script, ``--serve-emulator``:
a script with no greeting, so its agent sends 20 ms of G.711 silence every
20 ms; SIP-style offer; loopback, port 0), so the client's CPU and the
emulator's are read apart (``/proc/PID/stat``). For each step K this process
opens K calls at once (``blackbox_protocol.connect(..., call_type="webCall",
media=FileSession(tone.wav))``, a 440 Hz tone played at real-time pace), waits
for every call's first received frame, lets them settle, and then measures
over a window of ``window`` seconds:

- **CPU**: the client's (this process) and the emulator's CPU seconds, per
  call-second (``CPU / (K * window)``), and the client's cores (``CPU / window``);
- **loop lag**: how late a 10 ms sleep of this process's event loop wakes
  (p50 and max). aiortc 1.16's sender encodes every 20 ms packet in the
  loop's default executor (``run_in_executor``), so each packet waits for the
  loop twice: a lagging loop halves a sender's packet rate long before the
  process uses a whole core, and the session's track then skips the frames
  it owes (the *sent* underruns below);
- **underruns**, as 20 ms frames missing against the wall clock: *sent*, the
  tone file's playback position (``FileSource.position``; the session reads
  one 20 ms frame a packet, and skips ahead after a stall of over 100 ms) and
  *received*, the audio ``session.received_audio()`` yielded, both against
  ``K * window / 20 ms`` frames.

A step passes when both underrun rates stay under 1% and the client uses at
most one core. The steps go up until one fails, the cap is reached, or the run's
time bound is. Beside each step, in the same run, the **baseline**: K pairs of
plain ``RTCPeerConnection``s in this process (``iceServers=[]``, PCMU only,
offer and answer in memory), each sending a paced tone one way, measured the
same way (its CPU is both ends of each pair: compare it with client +
emulator).

Run ``python bench/voice_capacity.py`` (``nox -s bench``); ``--quick`` for a
short run (K=4 only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import av
from _emulator_child import EmulatorChild, cpu_seconds, raise_fd_limit, serve_in_child
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from attrs import define, field, frozen
from blackbox_emulator import AgentScript, Emulator
from blackbox_media_file import FileSession, FileSource
from blackbox_protocol import connect
from voice_setup import ToneTrack, write_tone

__all__ = ["DEFAULT_STEPS", "Measure", "Step", "main", "run"]

#: The calls opened at each step, up to the cap.
DEFAULT_STEPS: Final = (1, 4, 8, 12, 16, 24, 32, 48, 64)
_RATE: Final = 48000
_PTIME: Final = 0.020
#: Seconds for the calls of a step to connect, and for the emulator to start.
_CONNECT_BOUND: Final = 20.0
_START_BOUND: Final = 30.0
#: Seconds between the last call's first frame and the window.
_SETTLE: Final = 0.5
#: A step passes under this underrun rate.
_UNDERRUN_LIMIT: Final = 0.01


# The emulator's process.


def _serve_emulator() -> int:
    """The child: an emulator whose agent says nothing, so it sends silence all along."""
    return serve_in_child(lambda token: Emulator(token=token, script=AgentScript()))


# What is counted.


@define
class Measure:
    """One call's counters: seconds of audio received, and its source (if a file)."""

    received: float = 0.0
    source: FileSource | None = None
    ready: asyncio.Event = field(factory=asyncio.Event)

    @property
    def sent(self) -> float:
        """Seconds of the file played (``nan`` with no file)."""
        return math.nan if self.source is None else self.source.position


@frozen
class Step:
    """One step's window, on one path."""

    calls: int
    connected: int
    window: float
    cpu: float
    emulator_cpu: float | None
    missing_received: float
    missing_sent: float | None
    #: This process's event loop: how late a 10 ms sleep woke, p50 and max, seconds.
    lag_p50: float = 0.0
    lag_max: float = 0.0

    @property
    def frames(self) -> float:
        return self.calls * self.window / _PTIME

    @property
    def received_rate(self) -> float:
        return self.missing_received / self.frames

    @property
    def sent_rate(self) -> float | None:
        return None if self.missing_sent is None else self.missing_sent / self.frames

    @property
    def passed(self) -> bool:
        under = max(self.received_rate, self.sent_rate or 0.0) < _UNDERRUN_LIMIT
        return self.connected == self.calls and under and self.cpu / self.window <= 1.0


async def _driver_call(
    server: str, token: str, tone: Path, measure: Measure, release: asyncio.Event
) -> None:
    session = FileSession(tone)
    assert isinstance(session.source, FileSource)
    measure.source = session.source
    async with connect(token, call_type="webCall", server=server, media=session) as _call:
        async for frame in session.received_audio():
            measure.received += frame.duration
            measure.ready.set()
            if release.is_set():
                break


async def _drain(track: MediaStreamTrack) -> None:
    while True:
        try:
            await track.recv()
        except MediaStreamError:
            return


async def _pair(measure: Measure, release: asyncio.Event) -> None:
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    tasks: list[asyncio.Task[None]] = []

    async def listen(track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            measure.received += frame.samples / frame.sample_rate
            measure.ready.set()

    def on_track(track: MediaStreamTrack) -> None:
        # Two-way, as a call: the answerer sends a tone back (not counted).
        tasks.append(asyncio.ensure_future(listen(track)))
        answerer.addTrack(ToneTrack())

    def drain(track: MediaStreamTrack) -> None:
        tasks.append(asyncio.ensure_future(_drain(track)))

    answerer.on("track", on_track)
    offerer.on("track", drain)
    try:
        transceiver = offerer.addTransceiver(ToneTrack(), direction="sendrecv")
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == "audio/pcmu"])
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await release.wait()
    finally:
        await offerer.close()
        await answerer.close()
        for task in tasks:
            task.cancel()


async def _probe(lags: list[float]) -> None:
    """Sleep 10 ms again and again; note how late each wake-up is."""
    while True:
        began = time.monotonic()
        await asyncio.sleep(0.010)
        lags.append(time.monotonic() - began - 0.010)


async def _step(
    calls: int, window: float, emulator: tuple[int, str, str] | None, tone: Path
) -> Step:
    """K calls (through the emulator when given its pid, URL and token; else K bare pairs)."""
    measures = [Measure() for _ in range(calls)]
    release = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    for measure in measures:
        if emulator is None:
            tasks.append(asyncio.ensure_future(_pair(measure, release)))
        else:
            tasks.append(
                asyncio.ensure_future(
                    _driver_call(emulator[1], emulator[2], tone, measure, release)
                )
            )
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CONNECT_BOUND):
                await asyncio.gather(*(m.ready.wait() for m in measures))
        connected = sum(m.ready.is_set() for m in measures)
        await asyncio.sleep(_SETTLE)
        pid = None if emulator is None else emulator[0]
        received = [m.received for m in measures]
        sent = [m.sent for m in measures]
        emulator_cpu = None if pid is None else cpu_seconds(pid)
        lags: list[float] = []
        probe = asyncio.ensure_future(_probe(lags))
        cpu, began = time.process_time(), time.monotonic()
        await asyncio.sleep(window)
        probe.cancel()
        cpu, elapsed = time.process_time() - cpu, time.monotonic() - began
        emulator_cpu = (
            None if pid is None or emulator_cpu is None else cpu_seconds(pid) - emulator_cpu
        )
        got = sum(m.received for m in measures) - sum(received)
        played = sum(m.sent for m in measures) - sum(sent)
    finally:
        release.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15.0):
                await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            task.cancel()
    expected = calls * elapsed
    return Step(
        calls=calls,
        connected=connected,
        window=elapsed,
        cpu=cpu,
        emulator_cpu=emulator_cpu,
        missing_received=(expected - got) / _PTIME,
        missing_sent=None if emulator is None else (expected - played) / _PTIME,
        lag_p50=statistics.median(lags) if lags else math.nan,
        lag_max=max(lags, default=math.nan),
    )


def _row(label: str, step: Step) -> str:
    per_call = step.cpu / (step.calls * step.window)
    emu = (
        "-"
        if step.emulator_cpu is None
        else f"{step.emulator_cpu / (step.calls * step.window) * 1e3:.1f}"
    )
    sent = "-" if step.sent_rate is None else f"{step.sent_rate * 100:.2f}"
    return (
        f"  {step.calls:>3} {label:<9} {step.connected:>4} {per_call * 1e3:>9.1f} {emu:>9}"
        f" {step.cpu / step.window:>6.2f} {sent:>7} {step.received_rate * 100:>7.2f}"
        f" {step.lag_p50 * 1e3:>5.1f} {step.lag_max * 1e3:>5.0f}"
        f"  {'pass' if step.passed else 'FAIL'}"
    )


async def _run(steps: Sequence[int], window: float, budget: float) -> list[tuple[Step, Step]]:
    raise_fd_limit()
    token = secrets.token_urlsafe(16)
    done: list[tuple[Step, Step]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tone = write_tone(Path(tmp) / "tone.wav", _CONNECT_BOUND + window + 10)
        child = await EmulatorChild.start(__file__, token, bound=_START_BOUND)
        process, server = child.process, child.server
        try:
            await _step(1, 0.2, (process.pid, server, token), tone)  # warm-up, not reported
            started = time.monotonic()
            for index, calls in enumerate(steps):
                if time.monotonic() - started > budget:
                    print(f"  (stopped before K={calls}: the time bound)")
                    break
                emulator = (process.pid, server, token)
                if index % 2 == 0:
                    ours = await _step(calls, window, emulator, tone)
                    base = await _step(calls, window, None, tone)
                else:
                    base = await _step(calls, window, None, tone)
                    ours = await _step(calls, window, emulator, tone)
                done.append((ours, base))
                print(_row("driver", ours))
                print(_row("baseline", base), flush=True)
                if not ours.passed:
                    break
        finally:
            await child.stop()
    return done


def run(*, steps: Sequence[int], window: float, budget: float) -> list[tuple[Step, Step]]:
    """Run the steps in order until one fails, printing a row per step and path."""
    print(
        f"Voice capacity: K file-backed calls (driver + FileSession) against an emulator in"
        f" another process; baseline K plain aiortc pairs (PCMU) in this one. Python"
        f" {sys.version.split()[0]}, {os.cpu_count()} CPUs, window {window:g} s a step."
    )
    print(
        "\n  CPU in ms per call-second; cores = this process's CPU / window;"
        " underruns in % of 20 ms frames;"
        "\n  lag: how late this process's event loop woke from a 10 ms sleep, ms"
    )
    print(
        f"  {'K':>3} {'path':<9} {'up':>4} {'client ms':>9} {'emu ms':>9} {'cores':>6}"
        f" {'sent %':>7} {'recv %':>7} {'lag50':>5} {'max':>5}  <1% & <=1 core"
    )
    done = asyncio.run(_run(steps, window, budget))
    passed = [ours.calls for ours, _ in done if ours.passed]
    best = max(passed, default=0)
    print(f"\nLargest K with underruns under 1% and the client within one core: {best}.")
    if done:
        ours, base = done[-1] if not passed else next(p for p in done if p[0].calls == best)
        client = ours.cpu / (ours.calls * ours.window)
        emu = (ours.emulator_cpu or 0.0) / (ours.calls * ours.window)
        pair = base.cpu / (base.calls * base.window)
        print(
            f"At K={ours.calls}: client {client * 1e3:.1f} ms CPU a call-second"
            f" (~{1 / client if client else math.inf:.0f} calls a core), emulator"
            f" {emu * 1e3:.1f}; a bare aiortc pair (both ends) {pair * 1e3:.1f}:"
            f" client + emulator = {(client + emu) / pair if pair else math.nan:.2f}x the pair."
        )
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="Concurrent file-backed voice calls per core.")
    parser.add_argument("--quick", action="store_true", help="a short run (K=4 only)")
    parser.add_argument("--cap", type=int, help="the largest K tried (default 64, quick 4)")
    parser.add_argument("--window", type=float, help="seconds measured a step (2.5, quick 2)")
    parser.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_emulator:
        return _serve_emulator()
    cap: int = args.cap or (4 if args.quick else 64)
    started = time.perf_counter()
    run(
        steps=[k for k in DEFAULT_STEPS if k <= cap and (k > 1 or not args.quick)],
        window=args.window or (2.0 if args.quick else 2.5),
        budget=6.0 if args.quick else 38.0,
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
