"""The voice plug point: what a ``webCall`` conversation needs from a media peer.

The service is the SDP offerer. For a ``webCall`` the conversation, right
after ``event connection``, asks the media hook for an offer, sends it in
``sdpInvite``, hands the client's ``sdpAnswer`` back to the hook, and only
then lets the agent speak: each text chunk is sent as the hook starts to
say it, and the next waits until it has been said. The emulator's own hook
is ``blackbox_emulator.voice.VoicePeer`` (aiortc); ``Emulator(media=...)``
replaces it, e.g. with a stand-in that needs no WebRTC at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = ["MediaFactory", "MediaHook"]


class MediaHook(Protocol):
    """One voice conversation's media peer, on the service's side."""

    async def offer(self) -> str:
        """Make the SDP offer (with its ICE candidates gathered)."""
        ...

    async def answered(self, sdp: str) -> None:
        """Apply the client's SDP answer; return once the media flows.

        Raises:
            Exception: the answer cannot be used, or the media did not
                connect; the conversation then ends with a ``Failed`` result
                whose ``errorMessage`` gives the reason.
        """
        ...

    async def speak(self, text: str) -> None:
        """Say one chunk of the agent's text; return once it has been said."""
        ...

    @property
    def recording(self) -> Path | None:
        """The WAV file of what the caller said, once there is one."""
        ...

    async def aclose(self) -> None:
        """Stop the media; called once when the conversation ends, whatever happened."""
        ...


#: Makes the media hook of one ``webCall``, given the ``initialize`` request's
#: ``additionalData`` (``None`` when absent).
MediaFactory = Callable[[Mapping[str, Any] | None], MediaHook]
