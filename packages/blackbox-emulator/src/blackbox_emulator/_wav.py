"""A WAV file written as the audio comes, valid at every moment.

The stdlib ``wave`` module writes the header's sizes when the file is
closed, so a call that dies mid-way (a crash, a killed process) leaves a
file that says it holds nothing. This writer rewrites the two sizes after
every block, and flushes, so what is on disk is always a complete file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["WavWriter"]

#: Byte offsets of the two sizes in the canonical 44-byte header.
_RIFF_SIZE_AT: Final = 4
_DATA_SIZE_AT: Final = 40
_HEADER_SIZE: Final = 44


class WavWriter:
    """Mono 16-bit PCM into a WAV file.

    Args:
        path: the file; created (with its directory), or truncated.
        sample_rate: samples per second.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = self.path.open("wb")
        self._data_bytes = 0
        self._file.write(self._header())
        self._file.flush()

    @property
    def frames(self) -> int:
        """How many samples were written."""
        return self._data_bytes // 2

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._file is None

    def write(self, pcm: bytes) -> None:
        """Append little-endian 16-bit samples; the header is updated at once.

        Raises:
            ValueError: the file is closed, or ``pcm`` is not whole samples.
        """
        if self._file is None:
            raise ValueError("the WAV file is closed")
        if len(pcm) % 2:
            raise ValueError("16-bit samples take two bytes each")
        if not pcm:
            return
        self._file.write(pcm)
        self._data_bytes += len(pcm)
        self._file.seek(_RIFF_SIZE_AT)
        self._file.write(struct.pack("<I", _HEADER_SIZE - 8 + self._data_bytes))
        self._file.seek(_DATA_SIZE_AT)
        self._file.write(struct.pack("<I", self._data_bytes))
        self._file.seek(0, os.SEEK_END)
        self._file.flush()

    def close(self) -> None:
        """Close the file (it is already complete); idempotent."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _header(self) -> bytes:
        channels, width = 1, 2
        return b"".join(
            (
                b"RIFF",
                struct.pack("<I", _HEADER_SIZE - 8 + self._data_bytes),
                b"WAVE",
                b"fmt ",
                struct.pack(
                    "<IHHIIHH",
                    16,  # the size of this PCM format chunk
                    1,  # PCM
                    channels,
                    self.sample_rate,
                    self.sample_rate * channels * width,
                    channels * width,
                    8 * width,
                ),
                b"data",
                struct.pack("<I", self._data_bytes),
            )
        )
