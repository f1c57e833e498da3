"""``driving.Driver``: ``wake`` ends a step's wait with no input; the deadline still acts.

The Driver is the loop under everything that drives a connection; these run
it over a real loopback WebSocket (websockets' server, our client socket).
"""

from __future__ import annotations

import anyio
import pytest
from blackbox_protocol import (
    ClientConnection,
    ConnectionState,
    ConversationFailed,
    ProtocolTimeout,
)
from blackbox_protocol.driving import Driver
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection

from tests._transports import AsyncSocket
from tests.e2e._threaded_server import threaded_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets' asyncio client (the trio drivers run it elsewhere)


async def silent(websocket: ServerConnection) -> None:
    """Reads and says nothing until the client goes."""
    async for _ in websocket:
        pass


async def test_wake_ends_the_wait_with_no_input_and_the_deadline_still_acts() -> None:
    with threaded_server(silent) as port, anyio.fail_after(10):
        async with connect(f"ws://127.0.0.1:{port}") as websocket:
            connection = ClientConnection(session_timeout=1.0)
            driver = Driver(connection, AsyncSocket(websocket, []))
            connection.initialize("chat", now=driver.now())
            await driver.flush()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_wake_soon, driver)
                woken = await driver.step()
            assert woken == []
            state_when_woken = connection.state
            # The next step waits for the deadline it still has, and acts on it.
            timed_out = await driver.step()
    assert state_when_woken is ConnectionState.AWAITING_SESSION
    assert connection.state is ConnectionState.FAILED
    assert isinstance(connection.error, ProtocolTimeout)
    assert [type(event) for event in timed_out] == [ConversationFailed]


async def _wake_soon(driver: Driver[ClientConnection]) -> None:
    await anyio.sleep(0.1)
    driver.wake()
