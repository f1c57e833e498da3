"""blackbox_cli: the ``blackbox`` command line."""

from __future__ import annotations

from blackbox_cli._main import main

__all__ = ["main"]
