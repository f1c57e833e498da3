"""blackbox_media_aiortc: an ``AudioSession`` on aiortc.

``AiortcSession`` answers the service's WebRTC offer (SIP-style or
browser-style), plays an ``AudioSource`` as the caller and gives the agent's
audio to an ``AudioSink``. Microphone and speaker live in
``blackbox_media_aiortc.devices`` (the ``devices`` extra); echo cancellation
in ``blackbox_media_aiortc.aec`` (the ``aec`` extra). aiortc itself is
imported only when a session answers an offer.
"""

from __future__ import annotations

from blackbox_media_aiortc.echo import EchoPolicy
from blackbox_media_aiortc.errors import (
    AsyncioRequired,
    DeviceError,
    EchoCancellationUnavailable,
    GatheringError,
    GatheringTimeout,
    MediaConnectTimeout,
    MediaError,
    OfferError,
)
from blackbox_media_aiortc.session import AiortcSession
from blackbox_media_aiortc.sources import AudioSink, AudioSource

__all__ = [
    "AiortcSession",
    "AsyncioRequired",
    "AudioSink",
    "AudioSource",
    "DeviceError",
    "EchoCancellationUnavailable",
    "EchoPolicy",
    "GatheringError",
    "GatheringTimeout",
    "MediaConnectTimeout",
    "MediaError",
    "OfferError",
]
