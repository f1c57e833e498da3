"""``EnergyVad``: a simple voice activity detector on frame energy."""

from __future__ import annotations

from collections import deque
from typing import Final

from blackbox_protocol import AudioFrame

from blackbox_media_file import _pcm
from blackbox_media_file._checks import check_number

__all__ = ["EnergyVad"]

#: About -50 dBFS: quieter than any speech, louder than codec noise on silence.
DEFAULT_MIN_LEVEL: Final = 0.003


class EnergyVad:
    """Says whether a frame has voice in it: louder than the noise floor, by a ratio.

    The noise floor is the quietest frame of the last ``floor_window`` seconds:
    speech has pauses between words, so that minimum follows the line's
    background noise, not the voice, while a line that gets noisier raises it
    within the window. Until the window has filled, the floor is taken to be
    ``min_level`` (so a call that opens with speech is heard as speech). A
    frame is voice when its RMS level exceeds both ``ratio`` times the floor
    and ``min_level``.

    Args:
        ratio: how much louder than the floor voice is (4.0 is about 12 dB).
        min_level: the quietest level counted as voice, as a fraction of full
            scale (the default is about -50 dBFS).
        floor_window: seconds of audio the noise floor is the minimum of.

    Raises:
        TypeError: an argument is not a number.
        ValueError: an argument is not positive, or not finite.
    """

    def __init__(
        self,
        *,
        ratio: float = 4.0,
        min_level: float = DEFAULT_MIN_LEVEL,
        floor_window: float = 5.0,
    ) -> None:
        for name, value in {
            "ratio": ratio,
            "min_level": min_level,
            "floor_window": floor_window,
        }.items():
            check_number(name, value, positive=True)
        self.ratio = ratio
        self.min_level = min_level
        self.floor_window = floor_window
        self._elapsed = 0.0
        # (audio time it leaves the window, level), levels increasing: the
        # front is the window's minimum (a monotonic queue).
        self._window: deque[tuple[float, float]] = deque([(floor_window, min_level)])
        self.level = 0.0
        """The RMS level of the last frame, as a fraction of full scale."""

    @property
    def noise_floor(self) -> float:
        """The current noise floor, as a fraction of full scale."""
        return self._window[0][1]

    def is_voice(self, frame: AudioFrame) -> bool:
        """Measure ``frame``, update the noise floor, and say whether the frame is voice."""
        self.level = _pcm.rms(frame.pcm)
        self._elapsed += frame.duration
        while self._window and self._window[-1][1] >= self.level:
            self._window.pop()
        self._window.append((self._elapsed + self.floor_window, self.level))
        while self._window[0][0] <= self._elapsed:
            self._window.popleft()
        return self.level > max(self.ratio * self.noise_floor, self.min_level)
