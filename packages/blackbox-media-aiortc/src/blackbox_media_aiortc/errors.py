"""The errors of the aiortc backend, under the core's ``MediaError``.

The driver catches ``MediaError`` (a ``BlackBoxError``) and ends the call with
it; the subclasses say what went wrong, so an app can tell "the service sent an
offer we cannot answer" from "this network cannot gather candidates".
"""

from __future__ import annotations

from blackbox_protocol import MediaError

__all__ = [
    "AsyncioRequired",
    "DeviceError",
    "EchoCancellationUnavailable",
    "GatheringError",
    "GatheringTimeout",
    "MediaConnectTimeout",
    "MediaError",
    "OfferError",
]


class OfferError(MediaError, ValueError):
    """The offer cannot be answered: not SDP, no audio, no DTLS fingerprint, no ICE...

    Attributes:
        reason: what is wrong with the offer, in a sentence.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot answer the offer: {reason}")
        self.reason = reason


class GatheringError(MediaError):
    """ICE gathering produced no candidate to put in the answer."""


class GatheringTimeout(GatheringError, TimeoutError):
    """ICE gathering did not finish in time, and had found no candidate by then.

    Attributes:
        seconds: the limit that passed.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"ICE gathering found no candidate within {seconds:g} s")
        self.seconds = seconds


class MediaConnectTimeout(MediaError, TimeoutError):
    """ICE and DTLS did not connect in time after the answer went out.

    Not raised: it is the ``failure`` of a session whose state became ``FAILED``.

    Attributes:
        seconds: the limit that passed.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the audio connection was not up within {seconds:g} s of the answer")
        self.seconds = seconds


class AsyncioRequired(MediaError, RuntimeError):
    """aiortc runs on asyncio only, and this call was made under another event loop."""

    def __init__(self, library: str) -> None:
        super().__init__(
            f"aiortc runs on asyncio only (this is {library}); "
            "run this call with anyio's asyncio backend"
        )
        self.library = library


class DeviceError(MediaError):
    """A microphone or speaker cannot be used: no PortAudio, no such device, or it failed."""


class EchoCancellationUnavailable(MediaError):
    """Echo cancellation was asked for, and its extra is not installed (the message says how)."""
