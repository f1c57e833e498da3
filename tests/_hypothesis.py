"""How many examples the property and stateful tests try: the suite's own, or ten times more.

``nox -s fuzz`` sets ``BLACKBOX_FUZZ=1``; the ``tests`` session runs the counts
as written, which keep it quick.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["FUZZ_FACTOR", "examples"]

#: How many times more examples a fuzz run tries.
FUZZ_FACTOR: Final = 10


def examples(count: int) -> int:
    """``count``, or ``FUZZ_FACTOR`` times it in a fuzz run."""
    return count * FUZZ_FACTOR if os.environ.get("BLACKBOX_FUZZ") == "1" else count
