"""``StereoRecorder``: both sides of a call on one timeline, in one stereo WAV."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from enum import Enum
from typing import Final

from blackbox_protocol import AudioFrame

from blackbox_media_file import _pcm
from blackbox_media_file._checks import check_callback, check_sample_rate
from blackbox_media_file._convert import MonoConverter
from blackbox_media_file._wavfile import LiveWavFile
from blackbox_media_file.errors import FileError
from blackbox_media_file.paths import check_recording_paths

__all__ = ["Channel", "StereoRecorder", "StereoSide"]

_log = logging.getLogger("blackbox_media_file.stereo")

#: Lateness a frame may have before a gap of silence is put in front of it.
#: Smaller lateness is scheduling jitter: the session reads and delivers frames
#: on a 20 ms beat, and after a stall the frames it owes come at once and
#: catch up, so they must not be pushed back.
GAP_TOLERANCE: Final = 0.2
#: How far behind the clock the file may be held back waiting for a quiet side.
#: Only this much (plus the last frame) can be lost if the process is killed.
COMMIT_LAG: Final = 0.5
#: A side this far ahead of the clock drops frames of silence to catch up.
#: Frames with sound are never dropped.
DRIFT_TOLERANCE: Final = 0.2
#: Frames quieter than this (as a fraction of full scale) count as silence.
_SILENT: Final = 1e-4


class Channel(Enum):
    """The two channels of a stereo recording."""

    #: The left channel: what we sent (the caller's side).
    SENT = 0
    #: The right channel: what we received (the agent's side).
    RECEIVED = 1


class StereoSide:
    """One channel of a ``StereoRecorder``, as an audio sink.

    Closing a side finishes the whole recording (a call ends for both sides at
    once); later writes to either side are ignored.
    """

    def __init__(self, recorder: StereoRecorder, channel: Channel) -> None:
        self.recorder = recorder
        self.channel = channel

    async def write(self, frame: AudioFrame) -> None:
        """Place the frame on this channel at the current time."""
        self.recorder.add(self.channel, frame)

    async def close(self) -> None:
        """Finish the recording. Idempotent."""
        self.recorder.finish()


class _Track:
    """One channel's audio not yet in the file, and where it ends."""

    def __init__(self, sample_rate: int) -> None:
        self.converter = MonoConverter(sample_rate)
        #: Samples from the file's end (``committed``) onwards.
        self.pending = bytearray()
        #: The timeline position (in samples) where this channel's audio ends.
        self.end = 0


class StereoRecorder:
    """Records a call's two sides on one timeline: left what we sent, right what we received.

    Each frame is placed at the wall-clock moment it was given (``.sent`` when
    the session took it from the source, ``.received`` when the session
    delivered it), so the two channels line up as the call sounded; a gap
    between frames becomes silence. The timeline starts at the first frame of
    either side. Lateness under ``GAP_TOLERANCE`` (0.2 s) is taken as
    scheduling jitter and closed up rather than filled, so alignment is exact
    across real gaps and within that tolerance otherwise.

    The file is written as the call goes, up to where both channels are known,
    and never more than ``COMMIT_LAG`` (0.5 s) behind the clock while either
    side is active: it is a valid WAV at every moment, and a process killed
    mid-call loses at most that last half second.

    Args:
        path: the stereo WAV file to create (replaced if it exists).
        sample_rate: the recording's rate; frames in other shapes are converted.
        clock: seconds, monotonic; the default is ``time.monotonic``. Tests and
            replays may pass their own.

    Raises:
        FileError: the file cannot be created (see ``check_recording_paths``);
            nothing is touched then.
        TypeError: ``sample_rate`` is not an ``int``, or ``clock`` not callable.
        ValueError: ``sample_rate`` is not positive.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: int = 48000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_sample_rate(sample_rate)
        check_callback("clock", clock)
        self.path = os.fspath(path)
        check_recording_paths([self.path])
        self.sample_rate = sample_rate
        self._clock = clock
        self._start: float | None = None
        self._tracks = {channel: _Track(sample_rate) for channel in Channel}
        #: Samples per channel already in the file.
        self._committed = 0
        try:
            self._file = LiveWavFile(self.path, sample_rate=sample_rate, channels=2)
        except OSError as error:
            raise FileError(self.path, f"cannot record here: {error.strerror or error}") from error
        #: The sink for what we send: wire it where the source's frames go out.
        self.sent = StereoSide(self, Channel.SENT)
        #: The sink for what we receive: wire it where the session delivers audio.
        self.received = StereoSide(self, Channel.RECEIVED)

    @property
    def closed(self) -> bool:
        """Whether the recording is finished."""
        return self._file.closed

    @property
    def frames(self) -> int:
        """Samples per channel in the file so far."""
        return self._file.frames

    def add(self, channel: Channel, frame: AudioFrame) -> None:
        """Place ``frame`` on ``channel`` at the clock's current time.

        Ignored once the recording is finished.
        """
        if self.closed:
            return
        now = self._clock()
        if self._start is None:
            self._start = now
        track = self._tracks[channel]
        at = round((now - self._start) * self.sample_rate)
        track.end = max(track.end, self._committed)
        pcm = track.converter.convert(frame)
        ahead = track.end - at
        if ahead > DRIFT_TOLERANCE * self.sample_rate and _pcm.rms(pcm) < _SILENT:
            return
        if -ahead > GAP_TOLERANCE * self.sample_rate:
            self._extend(track, _pcm.silence(-ahead))
        self._extend(track, pcm)
        self._commit(at - round(COMMIT_LAG * self.sample_rate))

    async def close(self) -> None:
        """Finish the recording: write what is pending and close the file. Idempotent."""
        self.finish()

    def finish(self) -> None:
        """``close()``, for synchronous clean-up paths (it never blocks for long)."""
        if self.closed:
            return
        for track in self._tracks.values():
            self._extend(track, track.converter.flush())
        self._commit(max(track.end for track in self._tracks.values()))
        self._file.close()

    def _extend(self, track: _Track, pcm: bytes) -> None:
        track.pending += pcm
        track.end += len(pcm) // 2

    def _commit(self, due: int) -> None:
        """Write the timeline up to where both channels are known, or up to ``due``.

        A channel with nothing up to ``due`` gets silence there, but the file
        never goes beyond the audio either channel has.
        """
        left, right = (self._tracks[channel] for channel in Channel)
        target = max(min(left.end, right.end), min(max(left.end, right.end), due))
        count = target - self._committed
        if count <= 0:
            return
        size = 2 * count
        channels = []
        for track in (left, right):
            chunk = bytes(track.pending[:size])
            del track.pending[:size]
            channels.append(chunk.ljust(size, b"\0"))
        self._committed = target
        if not self._file.append(_pcm.interleave(*channels)):
            _log.warning("%s: WAV's 4 GiB limit reached; the recording stops here", self.path)
            self._file.close()
