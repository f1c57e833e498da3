"""blackbox_media_aiortc: an AudioSession on aiortc."""

from __future__ import annotations

__all__: list[str] = []
