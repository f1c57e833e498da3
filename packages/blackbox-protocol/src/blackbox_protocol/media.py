"""The media contract: what a voice backend gives the driver.

The driver hands the server's SDP offer to an ``AudioSession`` and sends back
the answer it makes; the session then carries audio both ways until it is
closed. Backends (aiortc with a microphone, files for servers and CI, your
own) implement this class; the driver knows nothing else about them, and they
know nothing about the wire protocol. This module performs no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from enum import Enum
from types import TracebackType
from typing import Self

from attrs import frozen

from blackbox_protocol.errors import MediaError

__all__ = ["AudioFrame", "AudioSession", "MediaState"]


class MediaState(Enum):
    """Where a session's media stands."""

    #: Created; no offer answered yet.
    NEW = "new"
    #: The answer is out; ICE and DTLS are under way.
    CONNECTING = "connecting"
    #: Audio flows.
    CONNECTED = "connected"
    #: The media path failed (ICE or DTLS); the session will not recover.
    FAILED = "failed"
    #: Closed by ``close()``; final.
    CLOSED = "closed"


@frozen
class AudioFrame:
    """A chunk of audio: signed 16-bit little-endian PCM, channels interleaved."""

    pcm: bytes
    sample_rate: int
    channels: int = 1

    @property
    def samples(self) -> int:
        """Samples per channel in this frame."""
        return len(self.pcm) // (2 * self.channels)

    @property
    def duration(self) -> float:
        """The frame's length in seconds."""
        return self.samples / self.sample_rate


class AudioSession(ABC):
    """One call's media: answers the offer, then carries audio until closed.

    Use it as an async context manager (``async with session:``); leaving the
    block closes it, and closing twice is safe. States only move forward:
    ``NEW`` to ``CONNECTING`` to ``CONNECTED``, and to ``FAILED`` or ``CLOSED``.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    @abstractmethod
    def state(self) -> MediaState:
        """The media's current state."""

    @property
    def failure(self) -> MediaError | None:
        """Why the media failed, once it has (``state`` is ``FAILED``); backends that know say."""
        return None

    @property
    def muted(self) -> bool:
        """Whether the caller's audio is muted (``mute()``): silence is sent in its place."""
        return False

    def interrupt(self) -> float:
        """Cut the agent off: drop its audio queued for playback, and the rest of its utterance.

        What is queued and not yet played (to a speaker) or written (to a
        recording) is dropped; from now on, the agent's audio given to the
        playback side is replaced by silence until the agent goes quiet, so
        an interrupted reply does not resume where it was cut. Its next
        utterance plays as usual. The audio ``received_audio()`` yields is
        not affected: it is what arrived. Backends say how they define
        "queued" and "quiet".

        Returns:
            The seconds of audio dropped from playback queues by this call
            (``0.0`` when nothing was waiting).

        Raises:
            MediaError: the backend cannot interrupt (this default).
        """
        raise MediaError(f"{type(self).__name__} cannot interrupt the agent's audio")

    def mute(self) -> None:
        """Stop sending the caller's audio; silence is sent instead. Idempotent.

        The media stream goes on (silence keeps its timing alive); ``muted``
        becomes ``True`` until ``unmute()``.

        Raises:
            MediaError: the backend cannot mute (this default).
        """
        raise MediaError(f"{type(self).__name__} cannot mute the caller's audio")

    def unmute(self) -> None:
        """Send the caller's audio again after ``mute()``. Idempotent.

        Raises:
            MediaError: the backend cannot mute (this default).
        """
        raise MediaError(f"{type(self).__name__} cannot mute the caller's audio")

    @abstractmethod
    async def answer(self, offer: str) -> str:
        """Answer the server's SDP offer.

        Returns only once ICE gathering is complete (the protocol has no trickle
        ICE), within the backend's bounded wait.

        Args:
            offer: the offer SDP, as the server sent it.

        Returns:
            The answer SDP, with every candidate.

        Raises:
            BlackBoxError: the offer cannot be answered, or gathering timed out
                (a subclass says which); the state becomes ``FAILED``.
        """

    @abstractmethod
    def state_changes(self) -> AsyncIterator[MediaState]:
        """Yield each new state as it happens; ends after ``FAILED`` or ``CLOSED``."""

    @abstractmethod
    def received_audio(self) -> AsyncIterator[AudioFrame]:
        """Yield the audio received from the agent; ends when the session closes."""

    @abstractmethod
    async def close(self) -> None:
        """Stop the media and release everything; finalize recordings. Idempotent."""
