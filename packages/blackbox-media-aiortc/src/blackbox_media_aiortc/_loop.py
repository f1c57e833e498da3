"""Refuse, at once and clearly, to run aiortc under an event loop other than asyncio."""

from __future__ import annotations

import asyncio  # noqa: TID251 -- the check is precisely "is an asyncio loop running here?"

from blackbox_media_aiortc.errors import AsyncioRequired

__all__ = ["current_library", "require_asyncio"]


def current_library() -> str | None:
    """The async library running this code (``"asyncio"``, ``"trio"``...), or ``None``."""
    try:
        # sniffio names trio (and others) reliably, but it is not a dependency
        # of this package: without it, asyncio's own check still decides.
        import sniffio
    except ImportError:
        pass
    else:
        try:
            return sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return "asyncio"


def require_asyncio(*, outside_ok: bool = False) -> None:
    """Raise ``AsyncioRequired`` unless this runs on an asyncio event loop.

    Args:
        outside_ok: also accept being called with no event loop at all (a
            session may be made in synchronous code, then used under asyncio).

    Raises:
        AsyncioRequired: running under trio (or any non-asyncio loop).
    """
    library = current_library()
    if library == "asyncio" or (library is None and outside_ok):
        return
    raise AsyncioRequired(library or "no asyncio event loop")
