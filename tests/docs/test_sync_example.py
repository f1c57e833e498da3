"""The synchronous chats run against a real server, as their pages show them.

``examples/sync_chat.py`` (docs/sync.md) is the SDK's sync API;
``examples/sans_io_chat.py`` (docs/protocol-core.md) drives the sans-IO core
with the websockets sync client. Both say a line on each reply's end.

The server is a real websockets server on 127.0.0.1 whose every conversation is
driven by ``blackbox_protocol.ServerConnection``: it greets, echoes the user's
text and answers it, asks the client for a tool when told the time is wanted,
and ends the conversation on ``terminate``. It checks the token as the service
does, with the documented error string.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import blackbox_protocol as bb
import pytest
from websockets.asyncio.server import ServerConnection

from tests._transports import serve_conversation
from tests.e2e._threaded_server import threaded_server

ROOT = Path(__file__).resolve().parents[2]
#: Each example, and the page that shows it.
PAGES = {"sync_chat": ROOT / "docs" / "sync.md", "sans_io_chat": ROOT / "docs" / "protocol-core.md"}
TOKEN = "t0ken/with?odd&chars="
#: Seconds of agent silence that end a reply; loopback replies take milliseconds.
PAUSE = 0.4


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Transcript = list[tuple[str, str]]
EXAMPLES = {name: _load_example(name) for name in PAGES}


@pytest.fixture(params=list(PAGES))
def example(request: pytest.FixtureRequest) -> ModuleType:
    return EXAMPLES[request.param]


class Agent:
    """The scripted agent: what it heard is kept for the test to check."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.tool_results: list[Any] = []
        self.ended: list[bool] = []

    async def handle(self, ws: ServerConnection) -> None:
        """One conversation on one socket: the sans-IO server end on the SDK's driving loop."""
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        token_ok = query.get("token") == [TOKEN]

        async def react(conversation: bb.ServerConnection, event: bb.Event) -> None:
            self._react(conversation, event, token_ok)

        await serve_conversation(ws, react, initialize_timeout=5.0)

    def _react(self, conversation: bb.ServerConnection, event: bb.Event, token_ok: bool) -> None:
        now = time.monotonic()
        match event:
            case bb.InitializeReceived() if not token_ok:
                conversation.send_error("Invalid token", now=now)
            case bb.InitializeReceived():
                conversation.accept(job_id="job-1", now=now)
                conversation.send_event("opened", now=now)
                conversation.send_text("Hello! ", now=now)
                conversation.send_text("How can I help?", now=now)
            case bb.ChatMessageReceived(text=text):
                self.heard.append(text)
                conversation.send_text(text, source="user", now=now)
                if "time" in text:
                    conversation.request_tool("t1", "clock", {"zone": "UTC"}, now=now)
                else:
                    conversation.send_text("You said: ", now=now)
                    conversation.send_text(f"{text}.", now=now)
            case bb.ToolResponseReceived(result=result):
                self.tool_results.append(result)
                conversation.send_text(f"The clock says {json.dumps(result)}.", now=now)
            case bb.TerminateReceived():
                self.ended.append(True)
                conversation.end(now=now)
            case _:
                pass


@pytest.fixture
def agent() -> Agent:
    return Agent()


@pytest.fixture
def server_url(agent: Agent) -> Iterator[str]:
    with threaded_server(agent.handle) as port:
        yield f"ws://127.0.0.1:{port}"


def test_chat_with_a_tool(server_url: str, agent: Agent, example: ModuleType) -> None:
    chat: Callable[..., Transcript] = example.chat
    transcript = chat(
        server_url,
        TOKEN,
        ["Hi", "What time is it?", "Bye"],
        tools={"clock": lambda zone: f"12:00 {zone}"},
        reply_pause=PAUSE,
    )

    assert transcript == [
        ("assistant", "Hello! How can I help?"),
        ("user", "Hi"),
        ("assistant", "You said: Hi."),
        ("user", "What time is it?"),
        ("assistant", 'The clock says "12:00 UTC".'),
        ("user", "Bye"),
        ("assistant", "You said: Bye."),
    ]
    assert agent.heard == ["Hi", "What time is it?", "Bye"]
    assert agent.ended == [True]


def test_a_failing_tool_is_answered_with_an_error(
    server_url: str, agent: Agent, example: ModuleType
) -> None:
    chat: Callable[..., Transcript] = example.chat

    def clock(zone: str) -> str:
        raise RuntimeError(f"no clock in {zone}")

    transcript = chat(server_url, TOKEN, ["time?"], tools={"clock": clock}, reply_pause=PAUSE)

    assert agent.tool_results == [{"error": "RuntimeError: no clock in UTC"}]
    assert transcript[-1] == (
        "assistant",
        'The clock says {"error": "RuntimeError: no clock in UTC"}.',
    )


def test_main_prints_the_transcript(
    server_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    example: ModuleType,
) -> None:
    monkeypatch.setenv("BLACKBOX_TOKEN", TOKEN)
    main: Callable[[list[str]], int] = example.main

    status = main(["--server", server_url, "--reply-pause", str(PAUSE), "Hi"])

    assert status == 0
    assert capsys.readouterr().out.splitlines() == [
        "agent: Hello! How can I help?",
        "you: Hi",
        "agent: You said: Hi.",
    ]


def test_a_bad_token_is_an_authentication_error(server_url: str, example: ModuleType) -> None:
    with pytest.raises(bb.AuthenticationError, match=r"^Invalid token$"):
        example.chat(server_url, "wrong", ["Hi"], reply_pause=PAUSE)


def test_main_reports_the_failure_without_the_token(
    server_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    example: ModuleType,
) -> None:
    monkeypatch.setenv("BLACKBOX_TOKEN", "s3cret-token")
    main: Callable[[list[str]], int] = example.main

    status = main(["--server", server_url, "Hi"])

    captured = capsys.readouterr()
    assert status == 1
    assert "AuthenticationError: Invalid token" in captured.err
    assert "s3cret" not in captured.out + captured.err


@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_shows_the_example_verbatim(name: str) -> None:
    page = PAGES[name].read_text(encoding="utf-8")
    code = (ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in page


def test_the_page_examples_run() -> None:
    page = PAGES["sans_io_chat"]
    results = doctest.testfile(str(page), module_relative=False, report=False)
    assert results.attempted > 0
    assert results.failed == 0
