"""Faults end in a typed error or a clean end, within a bound; never a hang.

Each emulator fault, the service's refusals, a server that is not there, and
reconnection (``Retry``): what is retried, and what never is.
"""

from __future__ import annotations

import logging
import time

import anyio
import pytest
from blackbox_emulator import (
    AgentScript,
    Direction,
    Emulator,
    EmulatorThread,
    Fault,
)
from blackbox_emulator.thread import EmulatorFactory
from blackbox_protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    AuthenticationError,
    ConfigurationError,
    Connected,
    ConnectError,
    ConnectionState,
    ConversationEnded,
    DisconnectedError,
    EventReceived,
    LocalProtocolError,
    ProtocolTimeout,
    ProtocolViolation,
    ReplyEnded,
    ReplyStarted,
    Retry,
    TextReceived,
    Timeouts,
    UnknownMessageReceived,
    connect,
)

from tests.e2e._calls import Outcome, assistant_said, finished, free_port, run_to_the_end, until

pytestmark = pytest.mark.anyio

LIMIT = 15
GREETING = AgentScript.default().greeting


# The emulator's faults.


async def test_drop_is_a_disconnection_without_close_code(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault=Fault.DROP)
    outcome = Outcome()
    with anyio.fail_after(LIMIT):
        with pytest.raises(DisconnectedError) as raised:
            await run_to_the_end(outcome, emulator.token, emulator.server)
        (record,) = await finished(emulator)

    assert raised.value.code is None
    assert "no close frame" in str(raised.value)
    connected, opened, *rest = outcome.events
    assert isinstance(connected, Connected)
    assert connected.job_id == record.job_id
    assert isinstance(opened, EventReceived)
    assert opened.name == "opened"
    # The greeting's first chunk came, and the drop cut the reply short.
    started, text, ended = rest
    assert (started, text) == (ReplyStarted(), TextReceived("assistant", GREETING[0], False))
    assert isinstance(ended, ReplyEnded)
    assert ended.text == GREETING[0]
    assert outcome.call.state is ConnectionState.CLOSED
    assert record.close_code is None
    assert record.types(Direction.IN) == ["initialize"]


async def test_garbage_is_reported_and_the_conversation_completes(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault=Fault.GARBAGE)
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server) as call:
            events = await until(call, assistant_said(GREETING[-1]))
            await call.send_text("bye")
            events += [event async for event in call]
        (record,) = await finished(emulator)

    violations = [e for e in events if isinstance(e, ProtocolViolation)]
    assert [v.excerpt for v in violations] == [
        "this is not JSON {",
        "[1, 2, 3]",
        repr(b"\x00\x01 a binary frame"),
    ]
    (unknown,) = [e for e in events if isinstance(e, UnknownMessageReceived)]
    assert unknown.message.type == "futureFeature"
    assert isinstance(events[-1], ConversationEnded)
    assert events[-1].result.status == "Completed"
    assert call.state is ConnectionState.CLOSED
    assert record.close_code == 1000


async def test_silence_times_out_waiting_for_the_session(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault=Fault.SILENCE)
    with anyio.fail_after(LIMIT):
        start = time.monotonic()
        with pytest.raises(ProtocolTimeout) as raised:
            async with connect(
                emulator.token, server=emulator.server, timeouts=Timeouts(session=1)
            ):
                pytest.fail("the block is entered only once the session is ready")
        elapsed = time.monotonic() - start
        (record,) = await finished(emulator)

    assert raised.value.waiting_for == "event connection"
    assert raised.value.seconds == 1
    assert 1 <= elapsed < 3
    # The socket was dropped: the silent emulator saw its client go.
    assert record.finished
    assert record.types(Direction.IN) == ["initialize"]


async def test_a_huge_frame_over_the_limit_is_a_violation_and_the_call_goes_on(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault=Fault.HUGE)
    with anyio.fail_after(LIMIT):
        async with connect(emulator.token, server=emulator.server) as call:
            events = await until(call, assistant_said(GREETING[-1]))
            result = await call.terminate()
        (record,) = await finished(emulator)

    (violation,) = [e for e in events if isinstance(e, ProtocolViolation)]
    assert violation.reason.startswith("a frame of ")
    assert violation.reason.endswith(f" characters is over the {DEFAULT_MAX_FRAME_SIZE} limit")
    assert violation.excerpt.startswith('{"type":"text"')
    assert len(violation.excerpt) == 200
    assert [e.text for e in events if isinstance(e, TextReceived)] == list(GREETING)
    assert result is not None
    assert result.status == "Completed"
    assert record.close_code == 1000


async def test_a_frame_past_the_websocket_limit_is_a_disconnection(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    # With a 1 MiB frame limit the WebSocket accepts 4 MiB: the 16 MiB frame
    # fails the connection (1009, message too big) before the core sees it.
    emulator = blackbox_emulator_factory(fault=Fault.HUGE)
    outcome = Outcome()
    with anyio.fail_after(LIMIT):
        with pytest.raises(DisconnectedError) as raised:
            await run_to_the_end(
                outcome, emulator.token, emulator.server, max_frame_size=1024 * 1024
            )
        (record,) = await finished(emulator)

    assert raised.value.code is None
    # Why the connection failed must show: the client, not the server, ended it.
    assert "exceeds limit of 4194304 bytes" in raised.value.reason
    assert not any(isinstance(e, TextReceived) for e in outcome.events)
    assert outcome.call.state is ConnectionState.CLOSED
    assert record.close_code == 1009


async def test_the_error_fault_is_a_configuration_error(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault=Fault.ERROR)
    with anyio.fail_after(LIMIT):
        with pytest.raises(ConfigurationError) as raised:
            async with connect(emulator.token, server=emulator.server):
                pytest.fail("the block is entered only once the session is ready")
        (record,) = await finished(emulator)

    assert raised.value.message == "Web integration is not enabled"
    assert record.error == "Web integration is not enabled"


# Refusals and unreachable servers.


async def test_a_wrong_token_is_an_authentication_error(
    blackbox_emulator: EmulatorThread,
) -> None:
    with anyio.fail_after(LIMIT):
        with pytest.raises(AuthenticationError) as raised:
            async with connect("not-the-token", server=blackbox_emulator.server):
                pytest.fail("the block is entered only once the session is ready")
        (record,) = await finished(blackbox_emulator)

    assert raised.value.message == "Invalid token"
    assert record.error == "Invalid token"


async def test_an_empty_token_is_refused_before_connecting(
    blackbox_emulator: EmulatorThread,
) -> None:
    with anyio.fail_after(LIMIT):
        with pytest.raises(LocalProtocolError, match="the token is empty"):
            async with connect("", server=blackbox_emulator.server):
                pytest.fail("no connection is made without a token")

    assert blackbox_emulator.conversations == []


async def test_nothing_listening_is_a_connect_error() -> None:
    port = free_port()
    with anyio.fail_after(LIMIT):
        with pytest.raises(ConnectError) as raised:
            async with connect("token", server=f"ws://127.0.0.1:{port}"):
                pytest.fail("nothing listens")

    assert raised.value.status is None
    assert f"ws://127.0.0.1:{port}" in str(raised.value)


# Reconnection.


async def test_a_retry_reaches_a_server_that_starts_late(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="blackbox_protocol")
    port = free_port()
    emulator = EmulatorThread(Emulator(port=port, token="late-token"))

    async def start_later() -> None:
        await anyio.sleep(0.3)
        await anyio.to_thread.run_sync(emulator.start)

    try:
        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as group:
                group.start_soon(start_later)
                # Attempts at about 0 s and 0.2 s find nothing; the one at 0.6 s connects.
                retry = Retry(attempts=2, first_delay=0.2)
                async with connect(
                    "late-token", server=f"ws://127.0.0.1:{port}", retry=retry
                ) as call:
                    result = await call.terminate()
            (record,) = await finished(emulator)
    finally:
        await anyio.to_thread.run_sync(emulator.stop)

    assert result is not None
    assert result.status == "Completed"
    assert record.types(Direction.IN) == ["initialize", "terminate"]
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2


@pytest.mark.parametrize(
    ("fault", "token", "error"),
    [
        (None, "not-the-token", AuthenticationError),
        (Fault.ERROR, None, ConfigurationError),
    ],
    ids=["authentication", "configuration"],
)
async def test_service_errors_are_never_retried(
    blackbox_emulator_factory: EmulatorFactory,
    fault: Fault | None,
    token: str | None,
    error: type[Exception],
) -> None:
    emulator = blackbox_emulator_factory(fault=fault)
    with anyio.fail_after(LIMIT):
        start = time.monotonic()
        with pytest.raises(error):
            async with connect(
                token or emulator.token,
                server=emulator.server,
                retry=Retry(attempts=3, first_delay=0.5),
            ):
                pytest.fail("the block is entered only once the session is ready")
        elapsed = time.monotonic() - start
        conversations = await finished(emulator)

    assert len(conversations) == 1
    assert elapsed < 0.5


async def test_no_reconnection_once_the_conversation_started(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emulator = blackbox_emulator_factory(fault=Fault.DROP)
    retry = Retry(attempts=3, first_delay=0.1)
    outcome = Outcome()
    with anyio.fail_after(LIMIT):
        with pytest.raises(DisconnectedError):
            await run_to_the_end(outcome, emulator.token, emulator.server, retry=retry)
        # Longer than the first retry's delay: a reconnection would be on record.
        await anyio.sleep(0.3)
        conversations = await finished(emulator)

    assert len(conversations) == 1
