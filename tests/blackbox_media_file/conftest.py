"""The file backend's parts are backend-neutral (anyio), so they run under asyncio and trio.

Tests of ``FileSession`` (aiortc, asyncio only) pin their own backend.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend
