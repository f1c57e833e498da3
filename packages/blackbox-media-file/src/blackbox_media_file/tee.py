"""Plumbing for sources and sinks: one sink feeding many, a source copied as it plays."""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING

from blackbox_protocol import AudioFrame

from blackbox_media_file import _pcm
from blackbox_media_file._checks import check_sample_rate
from blackbox_media_file.source import frame_samples

if TYPE_CHECKING:
    from blackbox_media_aiortc import AudioSink, AudioSource

__all__ = ["FanOutSink", "TeeSource"]

_log = logging.getLogger("blackbox_media_file.tee")


class FanOutSink:
    """An audio sink that passes every frame on to several sinks, in order.

    A sink that raises is logged and given no more frames, so one broken
    recorder (a full disk) does not take the call or the other sinks down.

    Args:
        sinks: where each frame goes.
    """

    def __init__(self, *sinks: AudioSink) -> None:
        self.sinks = list(sinks)
        """The sinks still being written to."""
        self._all = list(sinks)
        self._closed = False

    async def write(self, frame: AudioFrame) -> None:
        """Give ``frame`` to every sink still working."""
        for sink in list(self.sinks):
            try:
                await sink.write(frame)
            except Exception:
                _log.exception("%r failed; it gets no more audio", sink)
                self.sinks.remove(sink)

    def interrupt(self) -> float:
        """Pass ``interrupt()`` on to the sinks that have one (see ``AudioSink``).

        Returns:
            The most any of them dropped, in seconds (they queue the same
            audio side by side, so their drops overlap); ``0.0`` if none
            has a queue. A sink whose ``interrupt()`` raises is logged and
            given no more frames.
        """
        dropped = 0.0
        for sink in list(self.sinks):
            flush = getattr(sink, "interrupt", None)
            if not callable(flush):
                continue
            try:
                dropped = max(dropped, float(flush()))
            except Exception:
                _log.exception("%r failed; it gets no more audio", sink)
                self.sinks.remove(sink)
        return dropped

    async def close(self) -> None:
        """Close every sink, the dropped ones too, even if some fail. Idempotent.

        Raises:
            Exception: the first failure, once every sink has had its ``close()``.
        """
        if self._closed:
            return
        self._closed = True
        failure: Exception | None = None
        for sink in self._all:
            try:
                await sink.close()
            except Exception as error:
                if failure is None:
                    failure = error
        if failure is not None:
            raise failure


class TeeSource:
    """An audio source that plays another and copies what it plays to sinks.

    The session sends 20 ms of silence when its source has nothing; the sinks
    get that silence too, so they hear exactly what was sent. While ``muted``
    is true, they get silence in place of each frame too (the frame still
    goes to the session): set it with the session's ``mute()``, as
    ``FileSession`` does. A failing sink is logged and dropped, as in
    ``FanOutSink``.

    Args:
        source: what to play.
        sinks: where copies go (a ``StereoRecorder``'s ``.sent``, say).
        sample_rate: the session's rate, for the silence frames.

    Raises:
        TypeError: ``sample_rate`` is not an ``int``.
        ValueError: ``sample_rate`` is not positive.
    """

    def __init__(self, source: AudioSource, *sinks: AudioSink, sample_rate: int = 48000) -> None:
        check_sample_rate(sample_rate)
        self.source = source
        self.sinks = FanOutSink(*sinks)
        self._silence = AudioFrame(_pcm.silence(frame_samples(sample_rate)), sample_rate, 1)
        self.muted = False
        """Whether the sinks get silence in place of the frames (the session is muted)."""

    async def read(self) -> AudioFrame | None:
        """The source's next frame (``None`` included), after copying it to the sinks."""
        frame = await self.source.read()
        if frame is None:
            await self.sinks.write(self._silence)
        elif self.muted:
            await self.sinks.write(
                AudioFrame(bytes(len(frame.pcm)), frame.sample_rate, frame.channels)
            )
        else:
            await self.sinks.write(frame)
        return frame

    async def close(self) -> None:
        """Close the source, if it has a ``close()`` (the sinks are not this tee's to close)."""
        close = getattr(self.source, "close", None)
        if callable(close):
            result = close()
            # Sources may close synchronously or not; the protocol leaves it open.
            if inspect.isawaitable(result):
                await result
