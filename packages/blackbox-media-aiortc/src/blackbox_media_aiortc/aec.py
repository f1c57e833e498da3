"""Acoustic echo cancellation: WebRTC's AEC3, through LiveKit's SDK (the ``aec`` extra).

Install it with ``pip install "blackbox-media-aiortc[aec]"``: it brings
LiveKit's ``livekit`` wheel, whose native library carries WebRTC's audio
processing module (``livekit.rtc.AudioProcessingModule``). Without it, making
an ``EchoCanceller`` (or a session with ``EchoPolicy.ECHO_CANCELLATION``)
raises an ``EchoCancellationUnavailable`` that says how to install it. Why
this binding and not another: docs/voice-aiortc.md, "Echo".

The canceller is fed the two sides of the room: ``far()`` what the speaker
plays (the agent), ``near()`` what the microphone hears (the caller, plus the
agent's echo); ``near()`` returns the microphone's audio with the echo taken
out. WebRTC works on 10 ms blocks: ``far()`` buffers to cut them, ``near()``
takes whole ones.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Final

from blackbox_media_aiortc.errors import EchoCancellationUnavailable

__all__ = ["AEC_INSTALL_HINT", "AEC_SAMPLE_RATES", "EchoCanceller"]

#: What to run when the canceller is missing.
AEC_INSTALL_HINT: Final = 'pip install "blackbox-media-aiortc[aec]"'
#: The rates WebRTC's audio processing runs at natively.
AEC_SAMPLE_RATES: Final = (8000, 16000, 32000, 48000)
_BLOCK: Final = 0.010  # seconds: WebRTC's processing block


def _rtc() -> ModuleType:
    """``livekit.rtc``, imported on first use (it loads a 28 MB native library)."""
    try:
        return importlib.import_module("livekit.rtc")
    except ImportError as exc:
        raise EchoCancellationUnavailable(
            f"echo cancellation needs LiveKit's SDK (livekit): {AEC_INSTALL_HINT}"
        ) from exc


class EchoCanceller:
    """Takes the speaker's sound out of the microphone's: WebRTC's AEC3.

    AEC3 finds the echo's delay by itself (its estimator covers the few
    hundred milliseconds between a speaker and a microphone, buffering
    included) and adapts to the room as the call goes; it needs a second or
    two of the agent speaking to converge. A high-pass filter runs with it,
    as in browsers; noise suppression and gain control do not (the agent's
    recognizer has its own).

    Args:
        sample_rate: the rate of both sides' audio, one of ``AEC_SAMPLE_RATES``.
        stream_delay_ms: a hint of the echo's delay, in milliseconds (WebRTC's
            ``set_stream_delay_ms``); AEC3 estimates it anyway.

    Raises:
        EchoCancellationUnavailable: the ``aec`` extra is not installed (the
            message says how to install it).
        ValueError: a rate WebRTC does not process, or a negative delay.
    """

    def __init__(self, sample_rate: int, *, stream_delay_ms: int = 0) -> None:
        if sample_rate not in AEC_SAMPLE_RATES:
            rates = ", ".join(str(rate) for rate in AEC_SAMPLE_RATES)
            raise ValueError(f"echo cancellation runs at {rates} Hz, not {sample_rate}")
        if stream_delay_ms < 0:
            raise ValueError(f"stream_delay_ms must be 0 or more, not {stream_delay_ms}")
        rtc = _rtc()
        self.sample_rate = sample_rate
        self._frame: Any = rtc.AudioFrame
        self._apm: Any = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._delay = stream_delay_ms
        self._samples = round(sample_rate * _BLOCK)
        self._bytes = 2 * self._samples
        self._far = bytearray()

    def far(self, pcm: bytes) -> None:
        """Take note of what the speaker plays (mono s16le at ``sample_rate``), any length."""
        self._far += pcm
        while len(self._far) >= self._bytes:
            block = self._far[: self._bytes]
            del self._far[: self._bytes]
            self._apm.process_reverse_stream(self._frame(block, self.sample_rate, 1, self._samples))

    def near(self, pcm: bytes) -> bytes:
        """The microphone's audio (mono s16le at ``sample_rate``) with the echo taken out.

        Args:
            pcm: whole 10 ms blocks (a session's 20 ms packet is two).

        Raises:
            ValueError: ``pcm`` is not whole 10 ms blocks.
        """
        if len(pcm) % self._bytes:
            raise ValueError(f"near() takes whole 10 ms blocks ({self._bytes} bytes each)")
        out = bytearray()
        for start in range(0, len(pcm), self._bytes):
            frame = self._frame(
                bytearray(pcm[start : start + self._bytes]), self.sample_rate, 1, self._samples
            )
            self._apm.set_stream_delay_ms(self._delay)
            self._apm.process_stream(frame)  # in place
            out += frame.data.cast("B")
        return bytes(out)
