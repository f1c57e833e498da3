"""The voice plug point: what a ``webCall`` conversation needs from a media peer.

The service is the SDP offerer. For a ``webCall`` the conversation, right
after ``event connection``, asks the media hook for an offer, sends it in
``sdpInvite``, hands the client's ``sdpAnswer`` back to the hook, and only
then lets the agent speak. The emulator's aiortc peer (the next step)
implements this protocol; with no hook, a ``webCall`` ends at once with a
``Failed`` result saying voice is not supported yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["MediaFactory", "MediaHook"]


class MediaHook(Protocol):
    """One voice conversation's media peer, on the service's side."""

    async def offer(self) -> str:
        """Make the SDP offer (with its ICE candidates gathered)."""
        ...

    async def answered(self, sdp: str) -> None:
        """Apply the client's SDP answer; the media then flows."""
        ...

    async def aclose(self) -> None:
        """Stop the media; called once when the conversation ends, whatever happened."""
        ...


#: Makes the media hook of one ``webCall``, given the ``initialize`` request's
#: ``additionalData`` (``None`` when absent).
MediaFactory = Callable[[Mapping[str, Any] | None], MediaHook]
