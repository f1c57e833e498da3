"""Benchmark: mouth-to-ear latency through the emulator's echo agent, against two bare aiortc peers.

Our side plays short tone bursts (60 ms of 1 kHz at half of full scale,
one every ``period``, silence between) from an ``AudioSource`` that stamps
the wall-clock time at which it hands out a burst's first 20 ms frame (the
session's sending track reads the source at each packet's wall-clock time).
Received audio goes to an ``AudioSink`` that stamps each frame as it arrives;
a burst is heard in the first frame whose RMS passes a threshold after
silence. Latency = that frame's arrival - the burst's send time - the echo
agent's delay (``echo_audio_after``, 0 by default): the path both ways,
packetization, the jitter buffers, the echo agent's own 20 ms pacing, and up to
one frame of framing on each side (the figure is of whole frames).

- **driver + AiortcSession -> emulator echo**: ``blackbox_protocol.connect(...,
  call_type="webCall", media=AiortcSession(source, sink))`` to an emulator
  (``run_in_thread``, a script with no greeting, ``echo_audio_after``; SIP-style
  offer, G.711) on its own loop in a daemon thread of this process.
- **aiortc pair, echoing** (baseline): two plain ``RTCPeerConnection``s in this
  process (``iceServers=[]``, PCMU only); the answerer sends its received track
  straight back (``addTrack`` of the remote track), the offerer sends the same
  bursts from a paced track and stamps what comes back, frame by frame.

Calls alternate path by path, round after round (the order alternating), each
playing ``bursts`` bursts; the table gives p50, p90 and the slowest, in ms, and
the bursts lost (sent and never heard).

Run ``python bench/voice_latency.py`` (``nox -s bench``); ``--quick`` for a
short run.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import math
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from attrs import define, field
from blackbox_emulator import AgentScript, run_in_thread
from blackbox_media_aiortc import AiortcSession
from blackbox_protocol import AudioFrame, connect

__all__ = [
    "PATHS",
    "BurstSource",
    "BurstTrack",
    "Bursts",
    "Heard",
    "baseline_call",
    "emulator_call",
    "main",
    "run",
]

#: The measured path, then the baseline.
PATHS: Final = ("driver + AiortcSession -> echo agent", "aiortc pair, echoing")
_RATE: Final = 48000
_PTIME: Final = 0.020
_SAMPLES: Final = round(_RATE * _PTIME)
#: A burst: this many 20 ms frames of tone.
_BURST_FRAMES: Final = 3
_BURST_HZ: Final = 1000.0
#: The first burst starts this many frames into the stream (the path settles first).
_LEAD_FRAMES: Final = 15
#: Frame RMS above this is a burst (the burst's is ~11300; G.711's silence ~0).
_LOUD: Final = 2000.0
#: Seconds the call stays up after the last burst, for its echo.
_TAIL: Final = 0.8


@define
class Bursts:
    """The caller's audio: a burst every ``period`` seconds, silence between; stamps the sends."""

    period: float
    count: int
    sent: list[float] = field(factory=list)
    _frame: int = 0

    def next_packet(self) -> bytes:
        """The next 20 ms (s16le mono, 48 kHz); stamps a burst's first frame as it goes."""
        every = round(self.period / _PTIME)
        index = self._frame - _LEAD_FRAMES
        self._frame += 1
        if index < 0 or index // every >= self.count or index % every >= _BURST_FRAMES:
            return bytes(_SAMPLES * 2)
        if index % every == 0:
            self.sent.append(time.monotonic())
        n = np.arange(index % every * _SAMPLES, (index % every + 1) * _SAMPLES)
        return (16000 * np.sin(2 * math.pi * _BURST_HZ * n / _RATE)).astype("<i2").tobytes()

    @property
    def duration(self) -> float:
        """Seconds from the first packet to the end of the last burst."""
        return _LEAD_FRAMES * _PTIME + self.count * self.period


class BurstSource:
    """An ``AudioSource`` playing ``Bursts``: one 20 ms frame a read, at the read's time."""

    def __init__(self, bursts: Bursts) -> None:
        self.bursts = bursts

    async def read(self) -> AudioFrame | None:
        return AudioFrame(self.bursts.next_packet(), _RATE, 1)


class BurstTrack(MediaStreamTrack):
    """A plain aiortc track playing ``Bursts``, 20 ms a packet, paced by the wall clock."""

    kind = "audio"

    def __init__(self, bursts: Bursts) -> None:
        super().__init__()
        self._bursts = bursts
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._pts += _SAMPLES
            wait = self._start + self._pts / _RATE - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=_SAMPLES)
        frame.planes[0].update(self._bursts.next_packet())
        frame.sample_rate = _RATE
        frame.time_base = fractions.Fraction(1, _RATE)
        frame.pts = self._pts
        return frame


@define
class Heard:
    """An ``AudioSink`` (and a plain frame counter): stamps the onset of each burst heard."""

    onsets: list[float] = field(factory=list)
    _quiet: bool = True

    def feed(self, samples: np.ndarray[Any, Any]) -> None:
        """One received frame, stamped now."""
        if not len(samples):
            return
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        if rms > _LOUD and self._quiet:
            self.onsets.append(time.monotonic())
            self._quiet = False
        elif rms < _LOUD / 4:
            self._quiet = True

    async def write(self, frame: AudioFrame) -> None:
        self.feed(np.frombuffer(frame.pcm, dtype="<i2")[:: frame.channels])

    async def close(self) -> None:
        return None


def latencies(bursts: Bursts, heard: Heard, echo: float) -> tuple[list[float], int]:
    """Each onset against the latest burst sent before it; and the bursts never heard."""
    found: list[float] = []
    matched: set[int] = set()
    for onset in heard.onsets:
        before = [i for i, sent in enumerate(bursts.sent) if sent < onset]
        if before and before[-1] not in matched:
            matched.add(before[-1])
            found.append(onset - bursts.sent[before[-1]] - echo)
    return found, len(bursts.sent) - len(matched)


async def emulator_call(server: str, token: str, bursts: Bursts) -> Heard:
    """One call through the driver to the echo agent, playing ``bursts``."""
    heard = Heard()
    session = AiortcSession(BurstSource(bursts), heard)
    async with (
        asyncio.timeout(bursts.duration + 15),
        connect(token, call_type="webCall", server=server, media=session) as _call,
    ):
        while not bursts.sent or len(bursts.sent) < bursts.count:
            await asyncio.sleep(0.05)
        await asyncio.sleep(_TAIL)
    return heard


async def baseline_call(bursts: Bursts) -> Heard:
    """Two plain peers: the offerer plays ``bursts``; the answerer sends back what it gets."""
    heard = Heard()
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
            heard.feed(frame.to_ndarray().reshape(-1)[:: len(frame.layout.channels)])

    answerer.on("track", lambda track: answerer.addTrack(track))
    offerer.on("track", lambda track: tasks.append(asyncio.ensure_future(listen(track))))
    try:
        async with asyncio.timeout(bursts.duration + 15):
            transceiver = offerer.addTransceiver(BurstTrack(bursts), direction="sendrecv")
            codecs = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences(
                [c for c in codecs if c.mimeType.lower() == "audio/pcmu"]
            )
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(offerer.localDescription)
            await answerer.setLocalDescription(await answerer.createAnswer())
            await offerer.setRemoteDescription(answerer.localDescription)
            while len(bursts.sent) < bursts.count:
                await asyncio.sleep(0.05)
            await asyncio.sleep(_TAIL)
        return heard
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


async def _run(rounds: int, count: int, echo: float) -> dict[str, tuple[list[float], int, int]]:
    period = max(0.4, echo + 0.4)
    found: dict[str, list[float]] = {path: [] for path in PATHS}
    lost = dict.fromkeys(PATHS, 0)
    sent = dict.fromkeys(PATHS, 0)
    with run_in_thread(script=AgentScript(), echo_audio_after=echo) as emulator:
        for index in range(rounds):
            for path in PATHS if index % 2 == 0 else PATHS[::-1]:
                bursts = Bursts(period, count)
                try:
                    if path == PATHS[0]:
                        heard = await emulator_call(emulator.server, emulator.token, bursts)
                        delay = echo
                    else:
                        heard = await baseline_call(bursts)
                        delay = 0.0
                except Exception as exc:
                    print(f"  {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    lost[path] += count
                    sent[path] += count
                    continue
                times, missing = latencies(bursts, heard, delay)
                found[path] += times
                lost[path] += missing
                sent[path] += len(bursts.sent)
        emulator.wait_until_idle(timeout=10.0)
    return {path: (found[path], lost[path], sent[path]) for path in PATHS}


def run(*, rounds: int, bursts: int, echo: float) -> dict[str, tuple[list[float], int, int]]:
    """Run ``rounds`` calls a path, ``bursts`` bursts each, and print the table."""
    print(
        f"Mouth-to-ear latency: {rounds} calls a path, {bursts} bursts a call, in turns;"
        f" echo agent delay {echo:g} s (subtracted). Python {sys.version.split()[0]},"
        " loopback, no STUN, G.711 (PCMU) on both paths."
    )
    results = asyncio.run(_run(rounds, bursts, echo))
    print("\nBurst sent -> its echo heard, ms (the echo delay subtracted)")
    print(f"  {'path':<38} {'p50':>7} {'p90':>7} {'max':>7} {'heard':>6} {'lost':>5}  ratio p50")
    base = results[PATHS[1]][0]
    for path in PATHS:
        times, lost, _sent = results[path]
        ratio = statistics.median(times) / statistics.median(base) if times and base else math.nan
        print(f"  {path:<38} {_ms(times)} {len(times):>6} {lost:>5}  {ratio:>5.2f}x")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="Mouth-to-ear latency vs plain aiortc.")
    parser.add_argument("--quick", action="store_true", help="a short run (1 call a path)")
    parser.add_argument("--rounds", type=int, help="calls a path (default 4, quick 1)")
    parser.add_argument("--bursts", type=int, help="bursts a call (default 10, quick 8)")
    parser.add_argument(
        "--echo", type=float, default=0.0, help="the echo agent's delay, s (default 0)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    run(
        rounds=args.rounds or (1 if args.quick else 4),
        bursts=args.bursts or (8 if args.quick else 10),
        echo=args.echo,
    )
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
