"""``FileSession``: the headless ``AudioSession``: files in, recordings out, over aiortc."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final

import anyio
from blackbox_protocol import AudioFrame, AudioSession, MediaError, MediaState

from blackbox_media_file._checks import check_callback, check_waits
from blackbox_media_file.paths import check_recording_paths
from blackbox_media_file.recorder import WavRecorder
from blackbox_media_file.source import FileSource
from blackbox_media_file.stereo import StereoRecorder
from blackbox_media_file.tee import FanOutSink, TeeSource
from blackbox_media_file.turns import TurnEvent, TurnScript

if TYPE_CHECKING:
    from blackbox_media_aiortc import AiortcSession, AudioSink, AudioSource

__all__ = ["CLOSE_TIMEOUT", "FileSession"]

_log = logging.getLogger("blackbox_media_file.session")

#: The bound on closing the media, in seconds (aiortc bounds its own steps within it).
CLOSE_TIMEOUT: Final = 10.0
#: A file to play or record to.
_StrPath = str | os.PathLike[str]


class FileSession(AudioSession):
    """A voice call with no devices: plays files as the caller, records the agent.

    Built on ``blackbox_media_aiortc.AiortcSession``: everything about the
    WebRTC side (answering the offer, ICE, the real-time pace) is its, and its
    options pass through. This class chooses the source and the sinks:

    - ``play``: one file plays at once, from the moment audio flows, then
      silence; a sequence of files is a ``TurnScript``: each clip plays once
      the agent has finished speaking (the first after its greeting).
    - ``record``: what the agent says, to a mono 16-bit WAV.
    - ``record_stereo``: both sides on one timeline (left: sent, right:
      received), to a stereo 16-bit WAV.

    ``interrupt()`` and ``mute()`` act on the recordings as they do on a
    speaker and a microphone: the agent's interrupted utterance is recorded
    as silence until the agent goes quiet (a recording has no playback
    queue: nothing is dropped, the cut shows in the file on the call's
    timeline), and while muted the file plays on unheard, silence is sent,
    and the stereo recording's left channel has that silence.

    Recordings are valid WAV files at every moment of the call; ``close()``
    finishes them (and is idempotent), even when the call is cancelled or
    failed. Every file is opened when the session is made, so a bad path fails
    here, before any call; and every argument is checked before any file is
    created, so a session that fails to be made has touched no file (a
    recording over a clip, or two recordings into one file, are refused: see
    ``check_recording_paths``).

    Args:
        play: a file to play, or a sequence of clips to play in turns.
        record: where to record the agent (mono WAV).
        record_stereo: where to record both sides (stereo WAV).
        sample_rate: the rate audio is played and recorded at.
        silence_after_agent: for a turn script: seconds of silence that end
            the agent's turn.
        agent_wait: for a turn script: seconds to wait for an agent that says
            nothing before playing the next clip anyway.
        max_wait: for a turn script: the longest any clip waits, in seconds.
        on_event: for a turn script: called with each ``TurnEvent``.
        **aiortc_options: passed to ``AiortcSession`` (``ice_servers``,
            ``gather_timeout``, ``connect_timeout``, ``echo_policy``).

    Raises:
        FileError: a file cannot be played, or a recording cannot be created,
            or would overwrite a clip or the other recording.
        TypeError: a turn option is not a number, ``on_event`` not callable,
            or an unknown option for ``AiortcSession``.
        ValueError: a turn option is out of range (negative, not finite,
            ``max_wait`` below ``agent_wait``), whether ``play`` is one file
            or a turn script; or an ``AiortcSession`` option is.
    """

    def __init__(
        self,
        play: _StrPath | Sequence[_StrPath] | None = None,
        record: _StrPath | None = None,
        record_stereo: _StrPath | None = None,
        *,
        sample_rate: int = 48000,
        silence_after_agent: float = 0.8,
        agent_wait: float = 10.0,
        max_wait: float = 60.0,
        on_event: Callable[[TurnEvent], None] | None = None,
        **aiortc_options: Any,
    ) -> None:
        self.source: FileSource | TurnScript | None = None
        """What is played: a ``FileSource``, a ``TurnScript``, or nothing (silence)."""
        self.recorder: WavRecorder | None = None
        """The recording of the agent, if asked for."""
        self.stereo: StereoRecorder | None = None
        """The recording of both sides, if asked for."""
        clips = [play] if isinstance(play, str | os.PathLike) else list(play or ())
        check_waits(
            silence_after_agent=silence_after_agent, agent_wait=agent_wait, max_wait=max_wait
        )
        check_callback("on_event", on_event)
        check_recording_paths(
            [path for path in (record, record_stereo) if path is not None], clips=clips
        )
        # Imported here: aiortc takes the best part of a second to import.
        from blackbox_media_aiortc import AiortcSession

        # Made once to be thrown away: a wrong option, sample rate or event loop
        # fails here, before a recording has replaced a file.
        AiortcSession(sample_rate=sample_rate, **aiortc_options)
        try:
            if isinstance(play, str | os.PathLike):
                self.source = FileSource(play, sample_rate=sample_rate)
            elif play is not None:
                self.source = TurnScript(
                    play,
                    sample_rate=sample_rate,
                    silence_after_agent=silence_after_agent,
                    agent_wait=agent_wait,
                    max_wait=max_wait,
                    on_event=on_event,
                )
            if record is not None:
                self.recorder = WavRecorder(record, sample_rate=sample_rate)
            if record_stereo is not None:
                self.stereo = StereoRecorder(record_stereo, sample_rate=sample_rate)
            self._tee = self._source(sample_rate)
            self.session: AiortcSession = AiortcSession(
                self._tee, self._sink(), sample_rate=sample_rate, **aiortc_options
            )
            """The aiortc session doing the WebRTC work."""
        except BaseException:
            self._finish(discard=True)
            raise

    @property
    def script(self) -> TurnScript | None:
        """The turn script, when ``play`` was a sequence of clips."""
        return self.source if isinstance(self.source, TurnScript) else None

    @property
    def failure(self) -> MediaError | None:
        """Why the media failed, once ``state`` is ``FAILED`` (the aiortc session's)."""
        return self.session.failure

    @property
    def state(self) -> MediaState:
        """The media's current state (the aiortc session's)."""
        return self.session.state

    @property
    def muted(self) -> bool:
        """Whether ``mute()`` is in force (the aiortc session's)."""
        return self.session.muted

    def interrupt(self) -> float:
        """Cut the agent off (see ``AiortcSession.interrupt``).

        The recordings and a turn script get silence in place of the rest of
        the agent's utterance; a turn script hears it as the agent stopping,
        and plays its next clip ``silence_after_agent`` later.

        Returns:
            ``0.0``: the recordings write each frame as it comes, so nothing
            is queued to drop.
        """
        return self.session.interrupt()

    def mute(self) -> None:
        """Send silence in place of what plays, until ``unmute()``. Idempotent.

        The file or turn script goes on playing at its pace, unheard; the
        stereo recording's sent channel records the silence that was sent.
        """
        self.session.mute()
        if isinstance(self._tee, TeeSource):
            self._tee.muted = True

    def unmute(self) -> None:
        """Send what plays again, from its next packet. Idempotent."""
        self.session.unmute()
        if isinstance(self._tee, TeeSource):
            self._tee.muted = False

    async def answer(self, offer: str) -> str:
        """Answer the server's offer (see ``AudioSession.answer``)."""
        return await self.session.answer(offer)

    def state_changes(self) -> AsyncIterator[MediaState]:
        """Each new state as it happens (see ``AudioSession.state_changes``)."""
        return self.session.state_changes()

    def received_audio(self) -> AsyncIterator[AudioFrame]:
        """The agent's audio as it arrives (see ``AudioSession.received_audio``)."""
        return self.session.received_audio()

    async def close(self) -> None:
        """Close the call's media and finish every recording. Idempotent.

        Shielded from cancellation (and bounded by ``CLOSE_TIMEOUT``): a call
        cancelled mid-way still closes its peer connection. The recordings are
        finished even if closing the media fails or times out.
        """
        try:
            with anyio.move_on_after(CLOSE_TIMEOUT, shield=True) as scope:
                await self.session.close()
            if scope.cancelled_caught:
                _log.warning("the media did not close within %g s", CLOSE_TIMEOUT)
        finally:
            self._finish()

    def _source(self, sample_rate: int) -> AudioSource | None:
        if self.source is None or self.stereo is None:
            return self.source
        return TeeSource(self.source, self.stereo.sent, sample_rate=sample_rate)

    def _sink(self) -> AudioSink | None:
        sinks: list[AudioSink] = []
        if self.recorder is not None:
            sinks.append(self.recorder)
        if self.stereo is not None:
            sinks.append(self.stereo.received)
        if isinstance(self.source, TurnScript):
            sinks.append(self.source)
        return FanOutSink(*sinks) if sinks else None

    def _finish(self, *, discard: bool = False) -> None:
        """Stop playing and finish the recordings; with ``discard``, delete them too."""
        if self.source is not None:
            self.source.stop()
        for recorder in (self.recorder, self.stereo):
            if recorder is None:
                continue
            try:
                recorder.finish()
            except OSError:
                _log.exception("%s: the recording could not be finished", recorder.path)
            if discard:
                with suppress(OSError):
                    os.unlink(recorder.path)
