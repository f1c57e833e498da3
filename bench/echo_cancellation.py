"""Benchmark: how much of the agent's echo WebRTC's AEC3 (``EchoPolicy.ECHO_CANCELLATION``) removes.

A loopback, as a loudspeaker beside a microphone makes one: the agent's
voice-like sound (harmonics of a wandering pitch, in syllables) reaches the
microphone path ``delay`` later, times ``gain``, and goes through
``blackbox_media_aiortc.aec.EchoCanceller`` in the session's 20 ms packets.
The figure is the attenuation: how many dB below the echo fed in what is
left of it lies, once converged (after 2 s), and over the first second
(converging). Beside it, in the same run:

- **no canceller**: the echo as it would be sent, 0 dB by definition (the
  ``FULL_DUPLEX`` policy; ``HALF_DUPLEX`` sends silence instead, and the
  caller with it);
- **caller kept**: with the caller speaking alone after the agent stops, the
  share of the caller's level that the canceller lets through (1.0 is all);
- **cost**: microseconds of CPU per 20 ms packet, the canceller's two calls
  against the half-duplex gate's level measure of the same packet.

Needs the ``aec`` extra (the workspace installs it); without it, it says so
and exits 0. Run ``python bench/echo_cancellation.py`` (``nox -s bench``);
``--quick`` for a short run.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time
from typing import Final

import numpy as np
import numpy.typing as npt
from blackbox_media_aiortc.aec import AEC_INSTALL_HINT, EchoCanceller
from blackbox_media_aiortc.echo import level_dbfs

Signal = npt.NDArray[np.float64]

#: Seconds the canceller is given to converge before the figure is taken.
CONVERGED: Final = 2.0


def voice(rate: int, seconds: float) -> Signal:
    """A voice-like sound: eleven harmonics of a pitch around 140 Hz, in 1/3 s syllables."""
    t = np.arange(round(rate * seconds)) / rate
    phase = 2 * np.pi * (140 * t - 30 / (2 * np.pi * 0.7) * np.cos(2 * np.pi * 0.7 * t))
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    return np.asarray(np.round(4500 * wave * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2))


def rms(x: Signal) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


def db(echo: Signal, left: Signal) -> float:
    return 20 * math.log10(rms(echo) / max(rms(left), 1e-9))


def run(
    rate: int, far: Signal, delay: float, gain: float, caller: Signal
) -> tuple[Signal, Signal, list[float]]:
    """The echo, the canceller's output, and the CPU seconds of each packet."""
    canceller = EchoCanceller(rate)
    shift = round(delay * rate)
    echo = np.zeros(len(far))
    echo[shift:] = far[: len(far) - shift] * gain
    mic = np.clip(np.round(echo + caller), -32768, 32767).astype("<i2")
    far16 = far.astype("<i2")
    packet = rate // 50
    out = bytearray()
    costs = []
    for start in range(0, len(far) - packet + 1, packet):
        played, heard = (
            far16[start : start + packet].tobytes(),
            mic[start : start + packet].tobytes(),
        )
        began = time.process_time()
        canceller.far(played)
        out += canceller.near(heard)
        costs.append(time.process_time() - began)
    return echo[: len(out) // 2], np.frombuffer(bytes(out), "<i2").astype(float), costs


def gate_cost(rate: int, far: Signal) -> list[float]:
    """The half-duplex gate's work per packet: the level of what was received."""
    packet = rate // 50
    pcm = far.astype("<i2")
    costs = []
    for start in range(0, len(far) - packet + 1, packet):
        chunk = pcm[start : start + packet].tobytes()
        began = time.process_time()
        level_dbfs(chunk)
        costs.append(time.process_time() - began)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one rate, fewer cases")
    args = parser.parse_args()
    if importlib.util.find_spec("livekit") is None:
        print(f"echo cancellation: the aec extra is not installed ({AEC_INSTALL_HINT}); skipped")
        return
    rates = (48000,) if args.quick else (16000, 48000)
    cases = [(0.06, 0.5)] if args.quick else [(0.02, 0.3), (0.06, 0.5), (0.2, 0.8), (0.4, 0.8)]
    seconds = 6.0
    print("echo cancellation (WebRTC AEC3 via livekit), loopback of a voice-like agent:")
    print(
        f"{'rate':>6} {'delay':>6} {'gain':>5} | {'no canceller':>12} | "
        f"{'converged':>9} {'1st second':>10} | {'caller kept':>11} | "
        f"{'µs/packet':>9} {'gate µs':>7}"
    )
    converged_figures = []
    for rate in rates:
        far = voice(rate, seconds)
        for delay, gain in cases:
            echo, out, costs = run(rate, far, delay, gain, np.zeros(len(far)))
            steady = slice(round(CONVERGED * rate), None)
            first = slice(round(delay * rate), rate)
            converged = db(echo[steady], out[steady])
            converged_figures.append(converged)
            # The caller speaks all along; the agent stops at 4 s.
            quiet_far = far.copy()
            quiet_far[round(4 * rate) :] = 0
            caller = 3200 * np.sin(2 * np.pi * 440 * np.arange(len(far)) / rate)
            _, kept_out, _ = run(rate, quiet_far, delay, gain, caller)
            alone = slice(round(4.5 * rate), len(kept_out))
            kept = rms(kept_out[alone]) / rms(caller[alone])
            gate = gate_cost(rate, far)
            print(
                f"{rate:>6} {delay * 1000:>4.0f}ms {gain:>5.1f} | {0.0:>9.1f} dB | "
                f"{converged:>6.1f} dB {db(echo[first], out[first]):>7.1f} dB | {kept:>11.2f} | "
                f"{statistics.median(costs) * 1e6:>9.0f} {statistics.median(gate) * 1e6:>7.0f}"
            )
    print(f"attenuation once converged: {min(converged_figures):.1f} dB at worst")


if __name__ == "__main__":
    main()
