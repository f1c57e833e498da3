"""``TurnScript``: clips played one per turn, each after the agent has had its say."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from blackbox_protocol import AudioFrame, Event, ReplyEnded, ReplyStarted
from blackbox_protocol.turns import ASSISTANT, TurnTracker

from blackbox_media_file._checks import check_callback, check_sample_rate, check_waits
from blackbox_media_file.source import FileSource
from blackbox_media_file.vad import EnergyVad

__all__ = [
    "AgentStarted",
    "AgentStopped",
    "ClipFinished",
    "ClipStarted",
    "StartReason",
    "TurnEvent",
    "TurnScript",
]


class StartReason(Enum):
    """Why a clip started when it did."""

    #: The agent spoke, then was silent for ``silence_after_agent`` seconds.
    AGENT_FINISHED = "agent finished"
    #: The agent said nothing for ``agent_wait`` seconds.
    AGENT_SILENT = "agent silent"
    #: The agent was still talking after ``max_wait`` seconds.
    MAX_WAIT = "max wait"


@dataclass(frozen=True, slots=True)
class ClipStarted:
    """A clip began to play.

    Attributes:
        index: the clip's position in the script, from 0.
        path: the clip's file.
        at: when, on the script's clock.
        reason: what let it start.
    """

    index: int
    path: Path
    at: float
    reason: StartReason


@dataclass(frozen=True, slots=True)
class ClipFinished:
    """A clip's last frame has been played.

    Attributes:
        index: the clip's position in the script, from 0.
        path: the clip's file.
        at: when, on the script's clock.
    """

    index: int
    path: Path
    at: float


@dataclass(frozen=True, slots=True)
class AgentStarted:
    """Voice was heard from the agent after a silence.

    Attributes:
        at: when, on the script's clock.
    """

    at: float


@dataclass(frozen=True, slots=True)
class AgentStopped:
    """The agent has been silent for ``silence_after_agent`` seconds.

    Attributes:
        at: when that was known, on the script's clock.
        last_voice_at: when the agent was last heard (its speech ended then).
    """

    at: float
    last_voice_at: float


#: What a ``TurnScript`` reports, in the order it happened.
TurnEvent = ClipStarted | ClipFinished | AgentStarted | AgentStopped


class _Phase(Enum):
    WAITING = "waiting"
    PLAYING = "playing"
    DONE = "done"


class TurnScript:
    """An audio source that plays its clips in turn, each when the agent is done talking.

    Give it the received audio (``observe()``, or use it as a sink: ``write()``)
    and read it as the session's source. It starts waiting at its first
    ``read()``: once the agent has spoken and then been silent for
    ``silence_after_agent`` seconds, it plays the next clip; if the agent says
    nothing for ``agent_wait`` seconds, it plays the clip anyway; and no clip
    waits more than ``max_wait`` seconds, however long the agent talks. So the
    first clip follows the agent's greeting, and each next one the agent's
    reply to the previous. After the last clip it returns ``None`` (silence)
    for ever. Voice is told from silence by ``vad`` (energy-based by default).

    What happened when is in ``events`` (and passed to ``on_event`` as it happens).

    Args:
        clips: the files to play, in order; each is probed now.
        sample_rate: the rate of the frames produced.
        silence_after_agent: seconds of silence that end the agent's turn.
        agent_wait: seconds to wait for an agent that does not speak.
        max_wait: the longest any clip waits, in seconds.
        vad: the voice activity detector for the received audio.
        clock: seconds, monotonic; the default is ``time.monotonic``.
        on_event: called with each event as it happens (keep it quick).

    Raises:
        FileError: a clip cannot be played (see ``FileSource``).
        TypeError: ``clips`` is one path, not a sequence; a duration or the
            sample rate is not a number; ``clock`` or ``on_event`` is not callable.
        ValueError: no clips, or a duration is negative or not finite, or
            ``max_wait`` is shorter than ``agent_wait``.
    """

    def __init__(
        self,
        clips: Sequence[str | os.PathLike[str]],
        *,
        sample_rate: int = 48000,
        silence_after_agent: float = 0.8,
        agent_wait: float = 10.0,
        max_wait: float = 60.0,
        vad: EnergyVad | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[TurnEvent], None] | None = None,
    ) -> None:
        if isinstance(clips, str | os.PathLike):
            raise TypeError("clips is a sequence of files; for one clip, pass [clip]")
        if not clips:
            raise ValueError("a turn script needs at least one clip")
        check_sample_rate(sample_rate)
        check_waits(
            silence_after_agent=silence_after_agent, agent_wait=agent_wait, max_wait=max_wait
        )
        check_callback("clock", clock)
        check_callback("on_event", on_event)
        self.paths = [Path(clip) for clip in clips]
        self.sample_rate = sample_rate
        self.silence_after_agent = silence_after_agent
        self.agent_wait = agent_wait
        self.max_wait = max_wait
        self.vad = vad if vad is not None else EnergyVad()
        self.events: list[TurnEvent] = []
        """Everything that happened, in order."""
        self.started_at: float | None = None
        """When the script began (its first ``read()``), on its clock."""
        self._clock = clock
        self._on_event = on_event
        self._sources: list[FileSource] = []
        try:
            for path in self.paths:
                self._sources.append(FileSource(path, sample_rate=sample_rate))
        except BaseException:
            for source in self._sources:
                source.stop()
            raise
        self._phase = _Phase.WAITING
        self._next = 0
        self._waiting_since = 0.0
        self._last_voice_at: float | None = None
        # The core's quiet timer, fed the agent's voice activity: one rule for
        # "the agent is done" whether it is told from text or from audio.
        self._agent = TurnTracker(pause=silence_after_agent)

    @property
    def done(self) -> bool:
        """Whether every clip has been played (or the script was closed)."""
        return self._phase is _Phase.DONE

    @property
    def agent_speaking(self) -> bool:
        """Whether the agent is talking, as far as the script can tell."""
        return self._agent.speaker is not None

    def observe(self, frame: AudioFrame) -> None:
        """Take in a frame of the agent's audio, as it arrives."""
        now = self._clock()
        if self.vad.is_voice(frame):
            self._last_voice_at = now
            self._took(self._agent.activity(ASSISTANT, now=now), now)
        else:
            self._check_agent(now)

    async def write(self, frame: AudioFrame) -> None:
        """``observe()``, so that the script can be given received audio as a sink."""
        self.observe(frame)

    async def read(self) -> AudioFrame | None:
        """The next 20 ms of the clip playing, or ``None`` (silence) between clips and after."""
        now = self._clock()
        if self.started_at is None:
            self.started_at = self._waiting_since = now
        self._check_agent(now)
        if self._phase is _Phase.WAITING:
            reason = self._ready(now)
            if reason is None:
                return None
            self._phase = _Phase.PLAYING
            self._emit(ClipStarted(self._next, self.paths[self._next], now, reason))
        if self._phase is _Phase.PLAYING:
            frame = await self._sources[self._next].read()
            if frame is not None:
                return frame
            self._emit(ClipFinished(self._next, self.paths[self._next], now))
            self._next += 1
            self._waiting_since = now
            self._phase = _Phase.WAITING if self._next < len(self.paths) else _Phase.DONE
        return None

    async def close(self) -> None:
        """Stop: close every clip; ``read()`` returns ``None`` from now on. Idempotent."""
        self.stop()

    def stop(self) -> None:
        """``close()``, for synchronous clean-up paths."""
        self._phase = _Phase.DONE
        for source in self._sources:
            source.stop()

    def _ready(self, now: float) -> StartReason | None:
        """Whether the next clip may start now, and why."""
        waited = now - self._waiting_since
        heard = self._last_voice_at is not None and self._last_voice_at >= self._waiting_since
        if heard and not self.agent_speaking:
            return StartReason.AGENT_FINISHED
        if not heard and waited >= self.agent_wait:
            return StartReason.AGENT_SILENT
        if waited >= self.max_wait:
            return StartReason.MAX_WAIT
        return None

    def _check_agent(self, now: float) -> None:
        """Notice the end of the agent's speech once the silence has lasted long enough."""
        self._took(self._agent.handle_timer(now=now), now)

    def _took(self, events: list[Event], now: float) -> None:
        """Report the agent's turns as the tracker tells them."""
        for event in events:
            if isinstance(event, ReplyStarted):
                self._emit(AgentStarted(now))
            elif isinstance(event, ReplyEnded):
                self._emit(AgentStopped(now, event.turn.ended_at))

    def _emit(self, event: TurnEvent) -> None:
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)
