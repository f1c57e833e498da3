"""Records of conversations: every frame in and out, for assertions in tests.

The emulator appends to a record from its event loop while a test may read it
from another thread; reads take snapshots (``frames`` returns a copy), and
``finished`` turns true only once nothing more will be appended. A record may
keep only so many frames, and so many characters of them (the emulator's
``max_record_frames`` and ``max_record_size``): the rest are counted, not kept,
so a flooding client cannot grow the emulator's memory through its record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from blackbox_protocol.messages import CallType

__all__ = ["ConversationRecord", "Direction", "FrameRecord"]


class Direction(Enum):
    """Which way a frame went, seen from the emulator."""

    #: From the client to the emulator.
    IN = "in"
    #: From the emulator to the client.
    OUT = "out"


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One WebSocket data frame.

    Attributes:
        direction: which way it went.
        data: its payload: ``str`` for a text frame, ``bytes`` for a binary one.
        time: when it was sent or received, POSIX seconds.
    """

    direction: Direction
    data: str | bytes
    time: float

    def json(self) -> Any:
        """The frame's JSON value.

        Raises:
            ValueError: a binary frame, or text that is not JSON.
        """
        if isinstance(self.data, bytes):
            raise ValueError("a binary frame is not JSON")
        return json.loads(self.data)

    def __repr__(self) -> str:
        excerpt = self.data[:80]
        more = "..." if len(self.data) > len(excerpt) else ""
        return f"FrameRecord({self.direction.value}, {excerpt!r}{more})"


@dataclass(eq=False)
class ConversationRecord:
    """One socket's conversation, as the emulator saw it.

    Attributes:
        number: 1 for the emulator's first conversation, then 2, ...
        path: the request's path and query, the token redacted.
        origin: the request's ``Origin`` header, if any.
        call_type: the ``initialize`` request's call type, once it came.
        job_id: the ``jobId`` of ``event connection``, once sent.
        error: the error frame's message, when the emulator sent one.
        close_code: the close code, once closed; ``None`` when the connection
            ended without a close frame (``drop``) or is still open.
        close_reason: the reason of the emulator's close frame, when it closed
            for a rule the client broke (``strictness.RULES``, 1007) or after
            an error frame; ``None`` otherwise.
        finished: whether the emulator is done with this conversation.
        audio_path: voice: the WAV file of what the emulator received from the
            caller (``Emulator(record_dir=...)``), once the answer was applied;
            a complete file at every moment, even while the call runs.
        max_frames: the most frames kept; ``None``: no limit.
        max_size: the most characters (bytes, for binary frames) the kept
            frames hold in all; ``None``: no limit.
        frames_dropped: the frames not kept, for either limit: once
            ``max_frames`` are kept, every later one; before that, each that
            would pass ``max_size`` (a smaller one after it may still be kept).
    """

    number: int
    path: str
    origin: str | None = None
    call_type: CallType | None = None
    job_id: str | None = None
    error: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    finished: bool = False
    audio_path: Path | None = None
    max_frames: int | None = field(default=None, repr=False)
    max_size: int | None = field(default=None, repr=False)
    frames_dropped: int = 0
    _frames: list[FrameRecord] = field(default_factory=list, repr=False)
    _size: int = field(default=0, init=False, repr=False)

    @property
    def frames(self) -> list[FrameRecord]:
        """Every data frame so far, in order (a snapshot)."""
        return list(self._frames)

    def add(self, direction: Direction, data: str | bytes, time: float) -> None:
        """Append a frame (the emulator's side), or count it in ``frames_dropped``."""
        full = self.max_frames is not None and len(self._frames) >= self.max_frames
        too_big = self.max_size is not None and self._size + len(data) > self.max_size
        if full or too_big:
            self.frames_dropped += 1
            return
        self._size += len(data)
        self._frames.append(FrameRecord(direction, data, time))

    def messages(self, direction: Direction) -> list[dict[str, Any]]:
        """The JSON objects that went one way, skipping frames that are not one."""
        messages = []
        for frame in self.frames:
            if frame.direction is direction:
                try:
                    value = frame.json()
                except ValueError:
                    continue
                if isinstance(value, dict):
                    messages.append(value)
        return messages

    def types(self, direction: Direction) -> list[str]:
        """The ``type`` of each JSON object that went one way (``event`` as ``event NAME``)."""
        return [
            f"event {message.get('name')}" if message.get("type") == "event" else message["type"]
            for message in self.messages(direction)
            if isinstance(message.get("type"), str)
        ]

    def texts(self, source: str = "assistant") -> list[str]:
        """The ``text`` chunks the emulator sent from ``source`` (``assistant`` or ``user``)."""
        return [
            message["content"]["text"]
            for message in self.messages(Direction.OUT)
            if message.get("type") == "text" and message["content"].get("source") == source
        ]

    def __repr__(self) -> str:
        return (
            f"ConversationRecord(number={self.number}, call_type={self.call_type}, "
            f"frames={len(self._frames)}, frames_dropped={self.frames_dropped}, "
            f"error={self.error!r}, "
            f"close_code={self.close_code}, finished={self.finished}"
            + ("" if self.audio_path is None else f", audio_path={str(self.audio_path)!r}")
            + ")"
        )
