"""The token never shows: not in logs (every logger at DEBUG), reprs, errors or output."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import anyio
import pytest
from blackbox_emulator import AgentScript, Direction, ToolSpec, Turn
from blackbox_emulator.thread import EmulatorFactory
from blackbox_protocol import (
    AuthenticationError,
    ConnectError,
    Retry,
    TextReceived,
    connect,
)

from tests.e2e._calls import finished, free_port

pytestmark = pytest.mark.anyio

LIMIT = 15
#: Characters that URL-encoding changes, around a core that no encoding changes.
TOKEN = "tok-SECRET-123/+="
WRONG_TOKEN = "tok-WRONG-456/+="
#: What must never show, in any encoding of either token.
SECRETS = ("SECRET-123", "WRONG-456")

SCRIPT = AgentScript(
    greeting=("Hi.",),
    turns=(Turn(match="fail", tool=ToolSpec("fails"), reply=("{tool_result.error}",)),),
)


def shown(error: BaseException) -> Iterator[str]:
    """Every way an error shows: str, repr, traceback, along its causes and contexts."""
    yield "".join(traceback.format_exception(error))
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        current = current.__cause__ or current.__context__


async def test_the_token_appears_nowhere(
    blackbox_emulator_factory: EmulatorFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    emulator = blackbox_emulator_factory(token=TOKEN, script=SCRIPT)

    def fails() -> None:
        raise RuntimeError(f"a tool error (the call is {call!r})")

    texts: list[str] = []
    with anyio.fail_after(LIMIT):
        async with connect(TOKEN, server=emulator.server, tools={"fails": fails}) as call:
            texts += [repr(call), str(call)]
            await call.send_text("fail")
            async for event in call:
                if isinstance(event, TextReceived) and event.text.startswith("RuntimeError"):
                    break
            await call.terminate()
        texts += [repr(call), str(call)]

        with pytest.raises(AuthenticationError) as refused:
            async with connect(WRONG_TOKEN, server=emulator.server):
                pass
        texts += shown(refused.value)
        texts.append(str(refused.getrepr()))

        nowhere = f"ws://127.0.0.1:{free_port()}"
        with pytest.raises(ConnectError) as unreachable:
            async with connect(TOKEN, server=nowhere, retry=Retry(attempts=1, first_delay=0.01)):
                pass
        texts += shown(unreachable.value)

        records = await finished(emulator)

    texts += [repr(emulator), *(repr(r) for r in records), *(r.path for r in records)]
    out, err = capsys.readouterr()
    texts += [out, err, caplog.text]
    texts += [record.getMessage() for record in caplog.records]

    for text in texts:
        for secret in SECRETS:
            assert secret not in text

    # The check means something only if the URL was logged: websockets logs
    # the request line at DEBUG, through the driver's redacting logger.
    request_lines = [
        record.getMessage()
        for record in caplog.records
        if record.name == "blackbox_protocol.websocket"
        and "/api/v1/ws/webCall?token=***" in record.getMessage()
    ]
    assert len(request_lines) >= 2
    assert any(r.name == "blackbox_emulator.websockets" for r in caplog.records)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert any("tool 'fails' failed" in r.getMessage() for r in caplog.records)
    assert records[0].types(Direction.IN)[-1] == "terminate"
