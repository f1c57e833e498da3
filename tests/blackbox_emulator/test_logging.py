"""What ``blackbox emulator`` says on stderr, read from a pseudo-terminal as a user reads it.

A real ``blackbox emulator`` process whose stderr is a terminal (``os.openpty``),
and a client of raw frames over a real WebSocket (websockets' sync client): a
violation by the client is one line naming the conversation and the problem,
``-v`` says more, ``--log-level ERROR`` hides it, no line holds a token, and a
call whose media fails is one line, not a traceback. Every assertion is made
once the emulator has exited and its terminal has been read to the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.blackbox_cli._process import CLI, LISTENING, base_env

TOKEN: Final = "logging-test-token-9d27c1"
WRONG_TOKEN: Final = "logging-wrong-token-51e0aa"
#: Seconds any one wait may take.
WAIT: Final = 15.0
#: What the logging of ``blackbox emulator`` writes: ``[LEVEL logger: message]``.
LINE: Final = re.compile(r"^\[(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: (.*)\]$")


class EmulatorOnTerminal:
    """``blackbox emulator --port 0 --token TOKEN OPTIONS...``, its stderr a pseudo-terminal."""

    def __init__(self, *options: str) -> None:
        controller, terminal = os.openpty()
        self._controller = controller
        self._popen = subprocess.Popen(
            [*CLI, "emulator", "--port", "0", "--token", TOKEN, *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=base_env(),
            start_new_session=True,
        )
        os.close(terminal)
        self._stderr = bytearray()
        self._stdout = bytearray()
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(controller, self._stderr), daemon=True),
            threading.Thread(
                target=self._read, args=(self._stdout_fd(), self._stdout), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _stdout_fd(self) -> int:
        assert self._popen.stdout is not None
        return self._popen.stdout.fileno()

    def _read(self, fd: int, into: bytearray) -> None:
        # A terminal whose other end has closed reads EIO, not an empty read.
        with suppress(OSError):
            while chunk := os.read(fd, 65536):
                with self._changed:
                    into += chunk
                    self._changed.notify_all()

    def server(self) -> str:
        """The emulator's base URL, once it listens."""
        with self._changed:
            self._changed.wait_for(lambda: LISTENING.search(self._stdout.decode()), WAIT)
            found = LISTENING.search(self._stdout.decode())
        assert found is not None, f"not listening; stderr: {self._stderr.decode()!r}"
        return found.group(1)

    def wait_for_line(self, text: str) -> None:
        """Wait until a line of stderr holds ``text``."""
        with self._changed:
            met = self._changed.wait_for(lambda: text in self._stderr.decode(), WAIT)
        assert met, f"no line with {text!r} in {self._stderr.decode()!r}"

    @property
    def on_a_terminal(self) -> bool:
        """Whether its stderr went through a terminal: the line discipline wrote CR LF."""
        with self._changed:
            return b"\r\n" in self._stderr and b"\n" not in self._stderr.replace(b"\r\n", b"")

    def stop(self) -> list[str]:
        """Ctrl-C; once it has exited and its terminal is read to the end, its stderr lines."""
        os.killpg(self._popen.pid, signal.SIGINT)
        assert self._popen.wait(WAIT) == 130
        for reader in self._readers:
            reader.join(WAIT)
        return self._stderr.decode().splitlines()

    def close(self) -> None:
        """Kill it if it still runs; close the terminal."""
        if self._popen.poll() is None:
            os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait(WAIT)
        for reader in self._readers:
            reader.join(WAIT)
        assert self._popen.stdout is not None
        self._popen.stdout.close()
        os.close(self._controller)


@contextmanager
def emulator_on_terminal(*options: str) -> Iterator[EmulatorOnTerminal]:
    emulator = EmulatorOnTerminal(*options)
    try:
        yield emulator
    finally:
        emulator.close()


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "timestamp": "2025-01-01T00:00:00.000Z", **fields})


def initialize(call_type: str) -> str:
    return frame("initialize", request={"callType": call_type})


def receive_until(websocket: ClientConnection, kind: str) -> dict[str, Any]:
    """The first frame of type ``kind``, the ones before it skipped."""
    while True:
        message = json.loads(websocket.recv(WAIT))
        if message.get("type") == kind:
            result: dict[str, Any] = message
            return result


def finish(websocket: ClientConnection) -> dict[str, Any]:
    """``terminate``; the result; then the socket's close."""
    websocket.send(frame("terminate"))
    result = receive_until(websocket, "conversationResult")
    with suppress(ConnectionClosed):
        while True:
            websocket.recv(WAIT)
    return result


def chat_with_an_object_content(server: str) -> None:
    """A chat: a good message, answered; then one whose ``content`` is an object."""
    with connect(f"{server}/api/v1/ws/webCall?token={TOKEN}", open_timeout=WAIT) as websocket:
        websocket.send(initialize("chat"))
        receive_until(websocket, "event")
        websocket.send(frame("incomingChatMessage", content="hello"))
        receive_until(websocket, "text")
        websocket.send(frame("incomingChatMessage", content={"text": "hello"}))
        # The emulator may go on (a violation) or close the socket (1007, strict).
        with suppress(ConnectionClosed):
            finish(websocket)


def messages(lines: list[str], level: str | None = None) -> list[str]:
    """The messages of the log lines (of ``level``, if given); other lines are left out."""
    found = (LINE.match(line) for line in lines)
    return [match.group(2) for match in found if match and level in (None, match.group(1))]


def test_an_object_content_is_one_line_naming_the_conversation() -> None:
    with emulator_on_terminal() as emulator:
        server = emulator.server()
        chat_with_an_object_content(server)
        emulator.wait_for_line("conversation 1:")
        lines = emulator.stop()

    about_it = [line for line in messages(lines) if line.startswith("conversation 1:")]
    assert len(about_it) == 1, lines
    assert "content" in about_it[0]
    # Only that line: the rest of the conversation (a good message, terminate) said nothing.
    assert messages(lines) == about_it
    assert emulator.on_a_terminal


def test_verbose_says_what_each_conversation_does() -> None:
    with emulator_on_terminal("-v") as emulator:
        chat_with_an_object_content(emulator.server())
        emulator.wait_for_line("conversation 1:")
        lines = emulator.stop()

    assert len(messages(lines, "INFO")) >= 1, lines
    assert any(line.startswith("emulator listening on ws://") for line in messages(lines, "INFO"))
    assert any("content" in line for line in messages(lines, "WARNING")), lines
    assert messages(lines, "DEBUG") == []


def test_log_level_error_hides_the_violation() -> None:
    with emulator_on_terminal("--log-level", "error") as emulator:
        chat_with_an_object_content(emulator.server())
        lines = emulator.stop()

    assert messages(lines) == []
    assert not any("conversation 1" in line for line in lines), lines


def test_no_line_holds_a_token_even_at_debug() -> None:
    with emulator_on_terminal("-vv") as emulator:
        server = emulator.server()
        chat_with_an_object_content(server)
        with connect(f"{server}/api/v1/ws/webCall?token={WRONG_TOKEN}") as refused:
            receive_until(refused, "error")
        emulator.wait_for_line("conversation 2:")
        lines = emulator.stop()

    assert messages(lines, "DEBUG"), "-vv logs at DEBUG"
    text = "\n".join(lines)
    assert "token=***" in text  # websockets' request lines, masked
    assert TOKEN not in text
    assert WRONG_TOKEN not in text
    assert "conversation 2: ended by the error frame 'Invalid token', close 1008" in messages(lines)


@pytest.mark.parametrize("options", [(), ("-vv",)], ids=["default", "debug"])
def test_a_call_whose_media_fails_is_one_line(options: tuple[str, ...]) -> None:
    with emulator_on_terminal(*options) as emulator:
        url = f"{emulator.server()}/api/v1/ws/webCall?token={TOKEN}"
        with connect(url, open_timeout=WAIT) as websocket:
            websocket.send(initialize("webCall"))
            receive_until(websocket, "sdpInvite")
            # An answer no SDP parser takes: the emulator's own peer cannot apply it.
            answer = "v=0\r\nthis is no answer\r\n"
            websocket.send(frame("sdpAnswer", data={"sdpAnswer": answer}))
            result = receive_until(websocket, "conversationResult")["result"]
        emulator.wait_for_line("the media failed")
        lines = emulator.stop()

    assert result["status"] == "Failed"
    assert result["errorMessage"].startswith("the emulator's media failed: ")
    failed = [line for line in messages(lines, "WARNING") if "the media failed" in line]
    assert len(failed) == 1, lines
    assert re.fullmatch(r"conversation 1: the media failed: \w+: .+", failed[0]), failed
    text = "\n".join(lines)
    if options:
        assert "Traceback" in text  # DEBUG keeps the traceback, for whoever asked for it
    else:
        assert "Traceback" not in text
        assert messages(lines) == failed, lines


# The live service's rules and tool logs, from the command line.


def test_lenient_lets_the_chat_go_on_and_says_the_rule_it_relaxed() -> None:
    with emulator_on_terminal("--lenient") as emulator:
        server = emulator.server()
        with connect(f"{server}/api/v1/ws/webCall?token={TOKEN}", open_timeout=WAIT) as websocket:
            websocket.send(initialize("chat"))
            receive_until(websocket, "event")
            websocket.send(frame("incomingChatMessage", content={"text": "hello"}))
            result = finish(websocket)  # answered: the socket stayed open
        emulator.wait_for_line("relaxed")
        lines = emulator.stop()

    assert result["result"]["status"] == "Completed"
    assert any("lenient: incomingChatMessage.content relaxed" in line for line in lines), lines


@pytest.mark.parametrize(("options", "logged"), [((), True), (("--no-tool-call-results",), False)])
def test_tool_call_results_are_sent_unless_turned_off(
    tmp_path: Path, options: tuple[str, ...], logged: bool
) -> None:
    script = tmp_path / "agent.json"
    script.write_text(
        json.dumps(
            {
                "greeting": ["Hi."],
                "turns": [
                    {
                        "match": "weather",
                        "tool": {"name": "get_weather", "args": {}},
                        "reply": ["Ok."],
                    }
                ],
            }
        )
    )
    with emulator_on_terminal("--script", str(script), *options) as emulator:
        server = emulator.server()
        with connect(f"{server}/api/v1/ws/webCall?token={TOKEN}", open_timeout=WAIT) as websocket:
            websocket.send(initialize("chat"))
            receive_until(websocket, "event")
            websocket.send(frame("incomingChatMessage", content="weather?"))
            request = receive_until(websocket, "websocketToolRequest")
            tool_id = request["content"]["id"]
            websocket.send(
                frame("websocketToolResponse", channelId=None, content={"id": tool_id, "result": 1})
            )
            seen = []
            while (message := json.loads(websocket.recv(WAIT)))["type"] != "text":
                seen.append(message["type"])
            finish(websocket)
        emulator.stop()

    assert ("toolCallResult" in seen) is logged
