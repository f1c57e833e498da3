"""``WavRecorder``: an audio sink that records to a mono 16-bit WAV file."""

from __future__ import annotations

import logging
import os

from blackbox_protocol import AudioFrame

from blackbox_media_file._checks import check_sample_rate
from blackbox_media_file._convert import MonoConverter
from blackbox_media_file._wavfile import LiveWavFile
from blackbox_media_file.errors import FileError
from blackbox_media_file.paths import check_recording_paths

__all__ = ["WavRecorder"]

_log = logging.getLogger("blackbox_media_file.recorder")


class WavRecorder:
    """Records the audio it is given (what the agent says) to a mono 16-bit WAV.

    The file is created, with an empty but valid header, when the recorder is
    made. After every ``write()`` it is a complete WAV holding everything
    written so far: if the process dies mid-call, even by SIGKILL, what was
    recorded is playable, up to the last frame written.

    Frames in another shape (stereo, another rate) are converted to mono at
    ``sample_rate``. Writes after ``close()`` are ignored (a session may
    deliver a last frame while it shuts down).

    Args:
        path: the WAV file to create (replaced if it exists).
        sample_rate: the recording's rate.

    Raises:
        FileError: the file cannot be created (see ``check_recording_paths``);
            nothing is touched then.
        TypeError: ``sample_rate`` is not an ``int``.
        ValueError: ``sample_rate`` is not positive.
    """

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int = 48000) -> None:
        check_sample_rate(sample_rate)
        self.path = os.fspath(path)
        check_recording_paths([self.path])
        self.sample_rate = sample_rate
        self._converter = MonoConverter(sample_rate)
        try:
            self._file = LiveWavFile(self.path, sample_rate=sample_rate, channels=1)
        except OSError as error:
            raise FileError(self.path, f"cannot record here: {error.strerror or error}") from error

    @property
    def closed(self) -> bool:
        """Whether the recording is finished."""
        return self._file.closed

    @property
    def frames(self) -> int:
        """Samples recorded so far."""
        return self._file.frames

    @property
    def duration(self) -> float:
        """Seconds recorded so far."""
        return self.frames / self.sample_rate

    async def write(self, frame: AudioFrame) -> None:
        """Append a frame; the file on disk includes it when this returns.

        The write is synchronous: a 20 ms frame is a few kilobytes into the
        page cache, cheaper than a hop to a worker thread.
        """
        if not self.closed:
            self._append(self._converter.convert(frame))

    async def close(self) -> None:
        """Finish the recording and close the file. Idempotent."""
        self.finish()

    def finish(self) -> None:
        """``close()``, for synchronous clean-up paths (it never blocks for long)."""
        if not self.closed:
            self._append(self._converter.flush())
            self._file.close()

    def _append(self, pcm: bytes) -> None:
        if not self._file.append(pcm):
            _log.warning("%s: WAV's 4 GiB limit reached; the recording stops here", self.path)
            self._file.close()
