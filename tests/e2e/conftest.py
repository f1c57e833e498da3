"""End-to-end fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.e2e import _plain_server
from tests.e2e._plain_server import PlainServer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def plain_server() -> Iterator[PlainServer]:
    """The independent test server (``tests.e2e._plain_server``) in a thread: ``url``, ``token``."""
    with _plain_server.plain_server(secrets.token_urlsafe(16)) as server:
        yield server
