"""The two ends of a session: where the caller's audio comes from, where the agent's goes.

Write your own by implementing these protocols (no base class needed). A
source is polled by the session's sender once per 20 ms, from the asyncio
event loop; a sink is called on the event loop for every frame received. Both
must return quickly: a slow ``read()`` delays what is sent, a slow ``write()``
delays what is received.

A source or sink that owns something to release (a device, a file) may also
define ``async def close(self) -> None``: the session calls a source's once
when it closes (a sink's ``close()`` is part of the protocol and always called).

A sink that queues audio before playing it (a speaker) may also define
``def interrupt(self) -> float``: drop what is queued and not yet played, and
return its length in seconds. The session's ``interrupt()`` calls it (on the
event loop; it must not block), then gives the sink silence in place of the
rest of the agent's utterance.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from blackbox_protocol import AudioFrame

__all__ = ["AudioSink", "AudioSource"]


@runtime_checkable
class AudioSource(Protocol):
    """Produces the caller's audio.

    ``read()`` returns the next frame at once (the session paces playback in
    real time), or ``None`` when it has nothing now (silence is sent). Frames
    may have any sample rate, any channel count and any length; the session
    resamples them to what the encoder needs and cuts them into 20 ms packets.
    """

    async def read(self) -> AudioFrame | None:
        """The next frame to send, or ``None`` for "nothing now" (the session sends silence)."""
        ...


@runtime_checkable
class AudioSink(Protocol):
    """Receives the agent's audio, frame by frame, in arrival order.

    Frames are mono, at the session's ``sample_rate``.
    """

    async def write(self, frame: AudioFrame) -> None:
        """Take one frame of the agent's audio."""
        ...

    async def close(self) -> None:
        """The call's audio is over: finish (a recording) and release everything."""
        ...
