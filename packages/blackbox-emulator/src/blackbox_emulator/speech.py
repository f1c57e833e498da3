"""The emulated agent's voice: tones, not words, so a test can find them by frequency.

Each text chunk the agent says is one *utterance*: a beep per word, at one
frequency per utterance (``agent_tone``: the conversation's first utterance
at 700 Hz, the next at 1100 Hz, and so on round ``AGENT_TONES_HZ``), then a
short silence. The frequencies sit well inside the telephone band that G.711
carries, are no multiple of one another, and are apart from 440 Hz (the usual
test tone of a caller) and 400 Hz (Chromium's fake microphone), so an FFT
tells every one of them from the others and from the caller.

Besides the synthesis, the sample queues behind the emulator's audio track
(``Speaker`` for the scripted voice, ``EchoLine`` for the echo agent) and an
analysis helper for tests (``dominant_frequencies``). Everything here is
plain numpy and I/O-free; the aiortc track that plays it lives in ``voice``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "AGENT_TONES_HZ",
    "SAMPLE_RATE",
    "EchoLine",
    "Samples",
    "Speaker",
    "agent_tone",
    "dominant_frequencies",
    "utterance",
]

#: Mono 16-bit samples.
Samples = npt.NDArray[np.int16]

#: The rate of the agent's audio: G.711's own, so the default call needs no resampling.
SAMPLE_RATE: Final = 8000
#: The tone of each utterance, in order, then round again.
AGENT_TONES_HZ: Final = (700.0, 1100.0, 1300.0, 1700.0, 1900.0, 2300.0)

#: Half of full scale (-6 dBFS): loud and clear, far from clipping after G.711.
_AMPLITUDE: Final = 0.5 * 32767
#: A word's beep: 80 ms, plus 20 ms per character, at most 400 ms.
_BEEP_BASE: Final = 0.08
_BEEP_PER_CHAR: Final = 0.02
_BEEP_MAX: Final = 0.4
#: The pause between two words' beeps, and the silence that ends an utterance.
_WORD_GAP: Final = 0.06
_TRAILING_SILENCE: Final = 0.2
#: Each beep fades in and out, so it starts and stops without a click's broadband splash.
_FADE: Final = 0.005


def agent_tone(index: int) -> float:
    """The frequency (Hz) of the conversation's utterance number ``index`` (0 first)."""
    return AGENT_TONES_HZ[index % len(AGENT_TONES_HZ)]


def _beep(frequency: float, seconds: float, sample_rate: int) -> npt.NDArray[np.float64]:
    count = round(seconds * sample_rate)
    t = np.arange(count) / sample_rate
    wave = np.sin(2 * np.pi * frequency * t)
    fade = min(round(_FADE * sample_rate), count // 2)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        wave[:fade] *= ramp
        wave[-fade:] *= ramp[::-1]
    return wave


def utterance(text: str, index: int, *, sample_rate: int = SAMPLE_RATE) -> Samples:
    """The agent saying ``text`` as its utterance number ``index``.

    A beep per word (80 ms plus 20 ms per character, at most 400 ms), 60 ms
    apart, at ``agent_tone(index)``, then 200 ms of silence. Text without a
    word (punctuation, spaces) is still one short beep: the agent said something.

    Returns:
        Mono 16-bit samples at ``sample_rate``.
    """
    frequency = agent_tone(index)
    words = text.split() or [""]
    gap = np.zeros(round(_WORD_GAP * sample_rate))
    parts: list[npt.NDArray[np.float64]] = []
    for number, word in enumerate(words):
        if number:
            parts.append(gap)
        seconds = min(_BEEP_BASE + _BEEP_PER_CHAR * len(word), _BEEP_MAX)
        parts.append(_beep(frequency, seconds, sample_rate))
    parts.append(np.zeros(round(_TRAILING_SILENCE * sample_rate)))
    return (np.concatenate(parts) * _AMPLITUDE).astype(np.int16)


def dominant_frequencies(
    samples: npt.ArrayLike,
    sample_rate: int,
    *,
    window: float = 0.1,
    min_level: float = 0.02,
) -> list[float]:
    """The strongest frequency of each window of ``samples`` that is not silent.

    For tests: the agent's utterances show as runs of ``agent_tone(n)``, a
    caller's 440 Hz tone as 440. The resolution is about ``1 / window`` Hz
    (10 Hz by default), refined by interpolating the peak.

    Args:
        samples: mono samples, 16-bit integers or floats in [-1, 1].
        sample_rate: their rate.
        window: the length of each analysed window, in seconds.
        min_level: windows whose RMS is below this fraction of full scale are skipped.

    Returns:
        One frequency (Hz) per loud enough window, in order.
    """
    data = np.asarray(samples)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64) / 32768
    data = data.astype(np.float64).reshape(-1)
    size = max(2, round(window * sample_rate))
    taper = np.hanning(size)
    found: list[float] = []
    for start in range(0, len(data) - size + 1, size):
        chunk = data[start : start + size]
        if np.sqrt(np.mean(chunk**2)) < min_level:
            continue
        spectrum = np.abs(np.fft.rfft(chunk * taper))
        spectrum[0] = 0  # a DC offset is no tone
        peak = int(np.argmax(spectrum))
        shift = 0.0
        if 0 < peak < len(spectrum) - 1:
            # Parabolic interpolation of the peak between its neighbouring bins.
            left, middle, right = spectrum[peak - 1 : peak + 2]
            denominator = left - 2 * middle + right
            if denominator:
                shift = 0.5 * (left - right) / denominator
        found.append((peak + shift) * sample_rate / size)
    return found


class Speaker:
    """The utterances waiting to be played, pulled a frame at a time by the track.

    ``say`` queues samples; ``pull`` hands out the next ``count`` (silence
    when nothing is queued) and calls an utterance's ``done`` once its last
    sample has been handed out.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[Samples, Callable[[], None] | None]] = deque()
        self._offset = 0

    @property
    def pending(self) -> int:
        """How many samples are queued and not yet pulled."""
        return sum(len(samples) for samples, _ in self._queue) - self._offset

    def say(self, samples: Samples, done: Callable[[], None] | None = None) -> None:
        """Queue an utterance; ``done()`` is called once it has all been pulled."""
        self._queue.append((samples, done))

    def pull(self, count: int) -> Samples:
        """The next ``count`` samples to play."""
        out = np.zeros(count, dtype=np.int16)
        filled = 0
        while filled < count and self._queue:
            samples, done = self._queue[0]
            taken = min(count - filled, len(samples) - self._offset)
            out[filled : filled + taken] = samples[self._offset : self._offset + taken]
            filled += taken
            self._offset += taken
            if self._offset == len(samples):
                self._queue.popleft()
                self._offset = 0
                if done is not None:
                    done()
        return out

    def clear(self) -> None:
        """Drop what is queued, calling every ``done`` so nobody waits for it."""
        queue, self._queue = self._queue, deque()
        self._offset = 0
        for _, done in queue:
            if done is not None:
                done()


class EchoLine:
    """A delay line: what is pushed at time ``t`` is pulled for time ``t + delay``.

    The echo agent pushes what it hears, stamped with its arrival time, and its
    track pulls a frame for the time it is sent; the caller hears itself
    ``delay`` seconds later (plus the network's and jitter buffers' own delay).
    Pushed audio is never dropped or reordered: a chunk that arrives while the
    previous is still waiting is scheduled right after it.

    Args:
        delay: seconds.
        sample_rate: the rate of the pushed and pulled samples.
    """

    def __init__(self, delay: float, sample_rate: int = SAMPLE_RATE) -> None:
        if delay < 0:
            raise ValueError("the echo delay must be zero or more seconds")
        self._delay = delay
        self._rate = sample_rate
        #: Scheduled chunks: when their first (remaining) sample plays, and the samples.
        self._chunks: deque[tuple[float, Samples]] = deque()
        self._end = float("-inf")

    def push(self, samples: Sequence[int] | Samples, at: float) -> None:
        """Add what was heard at time ``at`` (seconds, the clock ``pull`` uses)."""
        chunk = np.asarray(samples, dtype=np.int16)
        if not len(chunk):
            return
        start = max(at + self._delay, self._end)
        self._chunks.append((start, chunk))
        self._end = start + len(chunk) / self._rate

    def pull(self, count: int, now: float) -> Samples:
        """The ``count`` samples to play from time ``now`` on (silence where nothing is due)."""
        out = np.zeros(count, dtype=np.int16)
        cursor = 0
        while cursor < count and self._chunks:
            start, chunk = self._chunks[0]
            offset = max(cursor, round((start - now) * self._rate))
            if offset >= count:
                break
            taken = min(count - offset, len(chunk))
            out[offset : offset + taken] = chunk[:taken]
            cursor = offset + taken
            if taken == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = (start + taken / self._rate, chunk[taken:])
        return out
