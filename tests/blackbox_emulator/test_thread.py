"""The emulator outside asyncio: in a thread, for sync code and trio."""

from __future__ import annotations

import errno
import socket

import pytest
import trio
import websockets.sync.client
from blackbox_emulator import AgentScript, Emulator, EmulatorThread, run_in_thread
from blackbox_protocol import ConnectionClosed, ConversationEnded, TextReceived

from tests.blackbox_emulator._client import chat_sync, chat_trio


def test_sync_code_can_chat_with_an_emulator_in_a_thread() -> None:
    with run_in_thread(script=AgentScript(greeting=("Hi.",))) as emu:
        events = chat_sync(emu.url_for(emu.token), "from sync code")
        emu.wait_until_idle()
        (record,) = emu.conversations

    texts = [e.text for e in events if isinstance(e, TextReceived)]
    assert texts == ["Hi.", "from sync code", "You said: ", "from sync code"]
    assert any(isinstance(e, ConversationEnded) for e in events)
    assert events[-1] == ConnectionClosed(1000, "")
    assert record.finished


def test_trio_code_can_chat_with_an_emulator_in_a_thread() -> None:
    with run_in_thread() as emu:
        events = trio.run(chat_trio, emu.url_for(emu.token), "from trio")

    assert any(isinstance(e, ConversationEnded) for e in events)
    assert events[-1] == ConnectionClosed(1000, "")


def test_the_thread_exposes_the_emulator() -> None:
    thread = EmulatorThread(Emulator(token="t-SECRET"))
    with thread as emu:
        assert emu.server == f"ws://127.0.0.1:{emu.port}"
        assert emu.token == "t-SECRET"
        assert emu.url_for("x y") == f"{emu.server}/api/v1/ws/webCall?token=x%20y"
        assert emu.conversations == []
        assert "SECRET" not in repr(emu)
        with pytest.raises(RuntimeError, match="already started"):
            emu.start()
    thread.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        thread.wait_until_idle()


def test_a_port_in_use_fails_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use") as failed, run_in_thread(port=port):
            pass
    assert failed.value.errno == errno.EADDRINUSE


def test_waiting_for_idle_is_bounded() -> None:
    with run_in_thread(fault="silence") as emu:
        with websockets.sync.client.connect(emu.url_for(emu.token)) as websocket:
            websocket.send('{"type":"initialize","channelId":null,"request":{"callType":"chat"}}')
            with pytest.raises(TimeoutError, match="still running"):
                emu.wait_until_idle(timeout=0.2)
        emu.wait_until_idle()
