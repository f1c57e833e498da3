"""``FileSource``: a file of any format PyAV decodes, played as 20 ms frames."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Final

import av
import av.container
from blackbox_protocol import AudioFrame

from blackbox_media_file._checks import check_sample_rate
from blackbox_media_file.errors import FileError

__all__ = ["FRAME_DURATION", "FileSource", "frame_samples"]

_log = logging.getLogger("blackbox_media_file.source")

#: The length of every frame a source yields, in seconds (the session's pace).
FRAME_DURATION: Final = 0.02


def frame_samples(sample_rate: int) -> int:
    """Samples in one 20 ms frame at ``sample_rate`` (rounded to a whole sample)."""
    return max(1, round(sample_rate * FRAME_DURATION))


class FileSource:
    """An audio source that plays a file as the caller, once.

    The file is opened and its first audio decoded when the source is made, so
    a missing or undecodable file fails here and not half-way through a call.
    The rest is decoded lazily, a frame's worth at a time, and resampled to
    mono s16 at ``sample_rate``. ``read()`` returns the next 20 ms frame at
    once (the session paces playback in real time), the last one padded with
    silence, and then ``None`` for ever.

    Args:
        path: the file: WAV, MP3, OGG (Vorbis, Opus), FLAC, M4A... whatever
            PyAV's FFmpeg decodes. Its first audio stream is played.
        sample_rate: the rate of the frames produced.

    Raises:
        FileError: the file is missing, unreadable, has no audio stream, or
            its audio cannot be decoded.
        TypeError: ``sample_rate`` is not an ``int``.
        ValueError: ``sample_rate`` is not positive.
    """

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int = 48000) -> None:
        check_sample_rate(sample_rate)
        self.path = os.fspath(path)
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples(sample_rate)
        self._frame_bytes = 2 * self.frame_samples
        self._pending = bytearray()
        self._frames_read = 0
        self._container = _open(self.path)
        stream = self._container.streams.audio[0]
        self.duration: float | None = _duration(self._container, stream)
        """The file's length in seconds as its header states it, or ``None`` if unknown."""
        self._decoded: Iterator[av.AudioFrame] | None = self._container.decode(stream)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        try:
            self._fill()
        except av.FFmpegError as error:
            self._release()
            raise FileError(self.path, f"cannot decode its audio: {error}") from error
        if not self._pending:
            self._release()
            raise FileError(self.path, "has no audio to play")

    @property
    def ended(self) -> bool:
        """Whether every frame has been read (``read()`` now returns ``None``)."""
        return self._decoded is None and not self._pending

    @property
    def position(self) -> float:
        """Seconds of audio read so far."""
        return self._frames_read * self.frame_samples / self.sample_rate

    async def read(self) -> AudioFrame | None:
        """The next 20 ms of the file, or ``None`` once it has all been played.

        A decoding error part-way through (a truncated or corrupt file) ends the
        playback there, with a warning logged: the call goes on in silence.
        """
        try:
            self._fill()
        except av.FFmpegError as error:
            _log.warning("%s: decoding stopped at %.2f s: %s", self.path, self.position, error)
            self._release()
        if not self._pending:
            return None
        chunk = bytes(self._pending[: self._frame_bytes])
        del self._pending[: self._frame_bytes]
        self._frames_read += 1
        return AudioFrame(chunk.ljust(self._frame_bytes, b"\0"), self.sample_rate, 1)

    async def close(self) -> None:
        """Stop decoding and close the file; ``read()`` returns ``None`` from now on. Idempotent."""
        self.stop()

    def stop(self) -> None:
        """``close()``, for synchronous clean-up paths."""
        self._pending.clear()
        self._release()

    def _fill(self) -> None:
        """Decode until a whole frame is buffered or the file ends."""
        while len(self._pending) < self._frame_bytes and self._decoded is not None:
            decoded = next(self._decoded, None)
            resampled = self._resampler.resample(decoded)
            for frame in resampled:
                # A packed mono plane may be padded for alignment beyond its samples.
                self._pending += bytes(frame.planes[0])[: 2 * frame.samples]
            if decoded is None:
                self._release()

    def _release(self) -> None:
        if self._decoded is not None:
            self._decoded = None
            self._container.close()


def _open(path: str) -> av.container.InputContainer:
    try:
        container = av.open(path, "r")
    except FileNotFoundError as error:
        raise FileError(path, "no such file") from error
    except IsADirectoryError as error:
        raise FileError(path, "is a directory") from error
    except (av.FFmpegError, OSError) as error:
        raise FileError(path, f"not a media file PyAV can open: {error}") from error
    if not container.streams.audio:
        container.close()
        raise FileError(path, "has no audio stream")
    return container


def _duration(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
