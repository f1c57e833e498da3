"""The whole suite: a test that needs a system package declares it (``tests/_system.py``)."""

from __future__ import annotations

pytest_plugins = ["tests._system"]
