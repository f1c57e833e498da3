"""Benchmark: a voice call's set-up time, through the emulator, against two bare aiortc peers.

The figure is the time from the start of ``blackbox_protocol.connect(...,
call_type="webCall", media=FileSession(tone.wav))`` (the socket not yet open)
to the first audio frame the agent sends reaching ``session.received_audio()``:
the WebSocket handshake, ``initialize``, the emulator's offer (its ICE
gathering), our answer (ours), ICE and DTLS, and the first RTP packet decoded.
The emulator (SIP-style offer, G.711; a script with no greeting, so the
agent's track sends silence and hanging up is not held behind a voiced
utterance: the built-in greeting makes ``terminate`` wait ~2.7 s) runs on its own
asyncio loop in a daemon thread of this process (``run_in_thread``): client
and emulator share the GIL, which every figure pays for, the baseline's too.

Beside it, in the same run, call after call in turns (the order alternating):

- **aiortc pair**: two plain ``RTCPeerConnection``s in this process
  (``iceServers=[]``, PCMU only, like the emulator's SIP-style offer), one
  sending a paced 440 Hz tone; the offer and answer are exchanged in memory.
  Timed from ``createOffer()`` to the first frame ``recv()`` gives on the
  other peer: the floor of any aiortc call on this machine, with no signaling.

Each path's table gives p50, p90 and the slowest, in ms, with the driver's
phases: the ``connect()`` block entered (``event connection``), and the
session's ICE gathering (``gathering_time``).

Run ``python bench/voice_setup.py`` (``nox -s bench``); ``--quick`` for a
short run.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import math
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from attrs import frozen
from blackbox_emulator import AgentScript, run_in_thread
from blackbox_media_file import FileSession
from blackbox_protocol import connect

__all__ = [
    "PATHS",
    "Setup",
    "ToneTrack",
    "baseline_call",
    "emulator_call",
    "main",
    "pcmu_pair",
    "run",
    "write_tone",
]

#: The measured path, then the baseline.
PATHS: Final = ("driver + FileSession -> emulator", "aiortc pair (in memory)")
#: Any call slower than this is a failure, not a figure.
_BOUND: Final = 15.0
_RATE: Final = 48000
_PTIME: Final = 0.020


def write_tone(path: Path, seconds: float, *, hz: float = 440.0, rate: int = _RATE) -> Path:
    """Write a mono 16-bit WAV of a tone at half of full scale."""
    n = np.arange(round(seconds * rate))
    samples = (16000 * np.sin(2 * math.pi * hz * n / rate)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


class ToneTrack(MediaStreamTrack):
    """A plain aiortc audio track: a 440 Hz tone, 20 ms a packet, paced by the wall clock."""

    kind = "audio"

    def __init__(self, hz: float = 440.0, rate: int = _RATE) -> None:
        super().__init__()
        self._rate = rate
        self._samples = round(rate * _PTIME)
        self._hz = hz
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += self._samples
            wait = self._start + self._pts / self._rate - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        n = np.arange(self._pts, self._pts + self._samples)
        pcm = (16000 * np.sin(2 * math.pi * self._hz * n / self._rate)).astype("<i2")
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = self._rate
        frame.time_base = fractions.Fraction(1, self._rate)
        frame.pts = self._pts
        return frame


def _pcmu_only(pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
    transceiver = pc.addTransceiver(track, direction="sendrecv")
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == "audio/pcmu"])


async def pcmu_pair(
    offerer: RTCPeerConnection, answerer: RTCPeerConnection, track: MediaStreamTrack
) -> None:
    """Negotiate ``offerer`` (sending ``track``, PCMU only) with ``answerer``, in memory."""
    _pcmu_only(offerer, track)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


def new_peer() -> RTCPeerConnection:
    """A peer with no ICE servers (aiortc would add Google's STUN server given none)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


@frozen
class Setup:
    """One call's times, in seconds from its start."""

    first_frame: float
    #: The ``connect()`` block entered (driver only).
    entered: float | None = None
    #: The session's ICE gathering for the answer (driver only).
    gathering: float | None = None


async def emulator_call(server: str, token: str, tone: Path) -> Setup:
    """One call through the driver: ``connect()`` to the first received frame, then hang up."""
    session = FileSession(tone)
    started = time.perf_counter()
    async with asyncio.timeout(_BOUND):
        async with connect(token, call_type="webCall", server=server, media=session) as _call:
            entered = time.perf_counter() - started
            async for _frame in session.received_audio():
                break
            first = time.perf_counter() - started
    return Setup(first, entered, session.session.gathering_time)


async def baseline_call() -> Setup:
    """Two plain peers: ``createOffer()`` to the first frame on the answering side."""
    offerer, answerer = new_peer(), new_peer()
    arrived: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def listen(track: MediaStreamTrack) -> None:
        try:
            await track.recv()
        except MediaStreamError:
            return
        if not arrived.done():
            arrived.set_result(time.perf_counter())
        while True:  # keep draining, as a real receiver would
            try:
                await track.recv()
            except MediaStreamError:
                return

    tasks: list[asyncio.Task[None]] = []
    answerer.on("track", lambda track: tasks.append(asyncio.ensure_future(listen(track))))
    try:
        started = time.perf_counter()
        async with asyncio.timeout(_BOUND):
            await pcmu_pair(offerer, answerer, ToneTrack())
            first = await arrived
        return Setup(first - started)
    finally:
        await offerer.close()
        await answerer.close()
        for task in tasks:
            task.cancel()


def _ms(values: Sequence[float]) -> str:
    if not values:
        return f"{'-':>7} {'-':>7} {'-':>7}"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return f"{statistics.median(ordered) * 1e3:>7.1f} {p90 * 1e3:>7.1f} {ordered[-1] * 1e3:>7.1f}"


async def _run(calls: int) -> dict[str, list[Setup]]:
    results: dict[str, list[Setup]] = {path: [] for path in PATHS}
    failures: dict[str, int] = dict.fromkeys(PATHS, 0)
    with tempfile.TemporaryDirectory() as tmp, run_in_thread(script=AgentScript()) as emulator:
        tone = write_tone(Path(tmp) / "tone.wav", 10.0)
        # One of each first, untimed: imports, codec tables, the first sockets.
        await emulator_call(emulator.server, emulator.token, tone)
        await baseline_call()
        for index in range(calls):
            order = PATHS if index % 2 == 0 else PATHS[::-1]
            for path in order:
                try:
                    if path == PATHS[0]:
                        results[path].append(
                            await emulator_call(emulator.server, emulator.token, tone)
                        )
                    else:
                        results[path].append(await baseline_call())
                except Exception as exc:
                    failures[path] += 1
                    print(f"  {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        emulator.wait_until_idle(timeout=10.0)
    for path, count in failures.items():
        if count:
            print(f"  {path}: {count} failed")
    return results


def run(*, calls: int) -> dict[str, list[Setup]]:
    """Run ``calls`` calls on each path, in turns, and print the table."""
    print(
        f"Voice call set-up: {calls} calls a path, in turns. Python {sys.version.split()[0]},"
        " loopback, no STUN; the emulator in a thread of this process (SIP-style offer, G.711)."
    )
    results = asyncio.run(_run(calls))
    print(f"\nTime to the first received audio frame, ms ({calls} calls a path)")
    print(f"  {'path':<34} {'p50':>7} {'p90':>7} {'max':>7}   ratio p50")
    base = [s.first_frame for s in results[PATHS[1]]]
    for path in PATHS:
        first = [s.first_frame for s in results[path]]
        ratio = statistics.median(first) / statistics.median(base) if first and base else math.nan
        print(f"  {path:<34} {_ms(first)}   {ratio:>5.2f}x")
    driver = results[PATHS[0]]
    entered = [s.entered for s in driver if s.entered is not None]
    gathering = [s.gathering for s in driver if s.gathering is not None]
    print("\nThe driver's phases, ms from the start of connect()")
    print(f"  {'connect() block entered':<34} {_ms(entered)}")
    print(f"  {'our answer: ICE gathering':<34} {_ms(gathering)}   (a duration)")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="Voice call set-up time vs plain aiortc.")
    parser.add_argument("--quick", action="store_true", help="a short run (6 calls a path)")
    parser.add_argument("--calls", type=int, help="calls a path (default 30, quick 6)")
    args = parser.parse_args(argv)
    calls: int = args.calls or (6 if args.quick else 30)
    started = time.perf_counter()
    run(calls=calls)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
