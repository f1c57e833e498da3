"""The file backend's errors."""

from __future__ import annotations

from blackbox_protocol import MediaError

__all__ = ["FileError"]


class FileError(MediaError):
    """A file cannot be played or recorded: missing, unreadable, or not audio PyAV decodes.

    Raised when the source or recorder is made, before any call starts, so that
    a bad path never fails a call half-way. A ``MediaError`` (from the core,
    like every backend's errors), so ``except MediaError`` catches it too.

    Attributes:
        path: the file, as given.
        reason: what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
