"""Files and directories for tests of what may not be written."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["unwritable_directory"]


@contextmanager
def unwritable_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory this process may not create files in, even as root.

    Root may create files in a directory whatever its mode, but not in
    procfs' ``/proc/1``; there a test runs as root too (CI runs as root).
    """
    if os.geteuid() == 0:
        yield Path("/proc/1")
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        yield locked
    finally:
        locked.chmod(0o700)
