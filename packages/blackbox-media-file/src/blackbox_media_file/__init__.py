"""blackbox_media_file: a headless AudioSession that plays and records files."""

from __future__ import annotations

__all__: list[str] = []
