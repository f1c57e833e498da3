"""A WAV file that is valid at every moment while it grows.

The header is written first, with sizes for no data; after each append the two
sizes (the RIFF chunk's and the data chunk's) are rewritten. The file is
unbuffered, so every append and every size update is a system call that has
reached the operating system when it returns: a process killed at any point
(even by SIGKILL) leaves a WAV that readers open, with every sample up to the
last size update. Power loss is another matter (that needs fsync, too slow per
frame).
"""

from __future__ import annotations

import os
import struct
from typing import Final

__all__ = ["MAX_DATA_BYTES", "LiveWavFile"]

_HEADER: Final = struct.Struct("<4sI4s4sIHHIIHH4sI")
#: Offsets of the two sizes in the canonical 44-byte header.
_RIFF_SIZE_AT: Final = 4
_DATA_SIZE_AT: Final = 40
#: The RIFF size field is 32 bits and counts the 36 header bytes after it, too.
MAX_DATA_BYTES: Final = 0xFFFFFFFF - 36


class LiveWavFile:
    """A 16-bit PCM WAV file, appended to in place.

    Args:
        path: the file to create (replaced if it exists).
        sample_rate: samples per second per channel.
        channels: interleaved channels in each appended chunk.

    Raises:
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.data_bytes = 0
        # Unbuffered on purpose: see the module's docstring.
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 -- closed by close()
        block = 2 * channels
        self._file.write(
            _HEADER.pack(
                *(b"RIFF", 36, b"WAVE"),
                *(b"fmt ", 16, 1, channels, sample_rate, sample_rate * block, block, 16),
                *(b"data", 0),
            )
        )

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._file.closed

    @property
    def frames(self) -> int:
        """Samples per channel in the file so far."""
        return self.data_bytes // (2 * self.channels)

    def append(self, pcm: bytes) -> bool:
        """Add interleaved s16le samples at the end, then make the header count them.

        Returns:
            False, writing nothing, when the file would outgrow WAV's 4 GiB limit.
        """
        if not pcm:
            return True
        if self.data_bytes + len(pcm) > MAX_DATA_BYTES:
            return False
        self._file.seek(0, os.SEEK_END)
        self._write_all(pcm)
        self.data_bytes += len(pcm)
        # The RIFF size first: a reader bounded by an older data size is still
        # consistent, while a data size beyond the RIFF chunk would be cut short.
        self._file.seek(_RIFF_SIZE_AT)
        self._write_all(struct.pack("<I", 36 + self.data_bytes))
        self._file.seek(_DATA_SIZE_AT)
        self._write_all(struct.pack("<I", self.data_bytes))
        return True

    def close(self) -> None:
        """Close the file (its header is already final). Idempotent."""
        self._file.close()

    def _write_all(self, data: bytes) -> None:
        # A raw file may write less than asked (rare, but allowed).
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if not written:
                raise OSError(f"{self._file.name}: the file takes no more data")
            view = view[written:]
