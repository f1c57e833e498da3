"""The emulator runs on asyncio (websockets' asyncio server), so its async tests do too."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
