"""Audio for the tests, made at run time: tones in files, frames, and measurements."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from blackbox_protocol import AudioFrame

__all__ = [
    "dominant_frequency",
    "encode_tone",
    "onset",
    "read_wav",
    "silent_frame",
    "tone",
    "tone_frame",
    "write_wav",
]

Samples = npt.NDArray[np.int16]


def tone(
    frequency: float, seconds: float, rate: int, *, amplitude: float = 0.3, start: int = 0
) -> Samples:
    """A tone as s16 samples, loud from its first sample (a cosine, so onsets are exact).

    ``start`` continues the phase of an earlier piece.
    """
    t = (np.arange(round(seconds * rate)) + start) / rate
    return (amplitude * 32767 * np.cos(2 * np.pi * frequency * t)).astype(np.int16)


def tone_frame(frequency: float, *, rate: int = 48000, index: int = 0) -> AudioFrame:
    """The ``index``-th 20 ms frame of a continuous mono tone."""
    samples = rate // 50
    pcm = tone(frequency, 0.02, rate, start=index * samples).astype("<i2").tobytes()
    return AudioFrame(pcm, rate, 1)


def silent_frame(rate: int = 48000) -> AudioFrame:
    """20 ms of mono digital silence."""
    return AudioFrame(bytes(2 * (rate // 50)), rate, 1)


def write_wav(path: Path, samples: Samples, rate: int, channels: int = 1) -> Path:
    """A 16-bit WAV (stdlib ``wave``); ``samples`` are interleaved when ``channels`` > 1."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> tuple[Samples, int, int]:
    """A 16-bit WAV's samples (one row per channel), rate and channel count."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        channels, rate, frames = wav.getnchannels(), wav.getframerate(), wav.getnframes()
        data = wav.readframes(frames)
    assert len(data) == 2 * channels * frames, "the header counts more than the file holds"
    samples = np.frombuffer(data, "<i2").astype(np.int16)
    return samples.reshape(-1, channels).T.copy(), rate, channels


def encode_tone(
    path: Path,
    *,
    codec: str,
    frequency: float = 440.0,
    seconds: float = 1.0,
    rate: int = 44100,
    layout: str = "stereo",
    container: str | None = None,
) -> Path:
    """A tone encoded by PyAV with ``codec`` (``libmp3lame``, ``vorbis``, ``flac``, ...)."""
    channels = av.AudioLayout(layout).nb_channels
    planar = np.repeat(tone(frequency, seconds, rate)[None, :], channels, axis=0)
    with av.open(str(path), "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        # FFmpeg's own Vorbis encoder is marked experimental.
        stream.codec_context.options = {"strict": "experimental"}
        source = av.AudioFrame.from_ndarray(planar, format="s16p", layout=layout)
        source.sample_rate = rate
        # Each encoder takes its own sample format and frame size.
        formats = stream.codec_context.codec.audio_formats
        assert formats
        fitted = av.AudioResampler(
            format=formats[0].name,
            layout=layout,
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for frame in [*fitted.resample(source), *fitted.resample(None)]:
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return path


def dominant_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    """The frequency of the strongest FFT bin (Hann-windowed), in Hz."""
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def onset(samples: npt.NDArray[np.int16], *, threshold: int = 1000) -> int:
    """The index of the first sample louder than ``threshold`` (-1 if none)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return int(loud[0]) if loud.size else -1
