"""``blackbox chat`` and ``blackbox emulator`` driven as a user drives them.

Real processes (``python -m blackbox_cli``), real sockets on 127.0.0.1: the
emulator runs as ``blackbox emulator`` in a child process, or in a thread of
the test (``blackbox_emulator_factory``) where the test reads what it received.
Every wait is bounded and every child's process group is killed at the end.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blackbox_protocol as bb
import pytest
from blackbox_emulator import AgentScript, Direction, EmulatorFactory, Turn
from websockets.asyncio.server import ServerConnection
from websockets.sync.client import connect as connect_sync

from tests._transports import serve_conversation
from tests.blackbox_cli._process import (
    CLI,
    Process,
    Result,
    base_env,
    emulator_process,
    free_port,
    is_note,
    run_cli,
)
from tests.e2e._threaded_server import threaded_server

TOKEN = "cli-test-token-4f1c9a"
WRONG_TOKEN = "wrong-token-77b2e0"
#: ``--reply-pause``: loopback replies take milliseconds; the default 1 s only slows tests.
PAUSE = "0.4"
#: The built-in agent's greeting, in one piece.
GREETING = "Hello! This is the BlackBox emulator. How can I help?"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """``blackbox emulator --port 0 --token TOKEN`` in a child process: its URL."""
    with emulator_process("--token", TOKEN) as (server, _):
        yield server


def chat(server: str, *args: str, token: str | None = TOKEN, timeout: float = 30) -> Result:
    """``blackbox chat --server SERVER --reply-pause PAUSE ARGS...``, the token in the env."""
    env = base_env() if token is None else base_env(BLACKBOX_TOKEN=token)
    return run_cli(
        "chat", "--server", server, "--reply-pause", PAUSE, *args, env=env, timeout=timeout
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line as a JSON object that names its event."""
    events = []
    for line in stdout.splitlines():
        event = json.loads(line)
        assert isinstance(event, dict), line
        assert isinstance(event.get("event"), str), line
        events.append(event)
    return events


def transcript(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The ``TextReceived`` events as ``(source, text)``, a speaker's chunks joined."""
    said: list[tuple[str, str]] = []
    for event in events:
        if event["event"] != "TextReceived":
            continue
        if said and said[-1][0] == event["source"]:
            said[-1] = (event["source"], said[-1][1] + event["text"])
        else:
            said.append((event["source"], event["text"]))
    return said


def one_error_line(result: Result) -> str:
    """The single ``blackbox: ...`` line a failure prints on stderr (notes aside)."""
    lines = [line for line in result.stderr.splitlines() if not is_note(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("blackbox: "), result.stderr
    return lines[0]


# A scripted conversation.


@pytest.mark.parametrize("token_from", ["env", "option"])
def test_json_lines_tell_the_conversation_in_order(emulator: str, token_from: str) -> None:
    token_args = ["--token", TOKEN] if token_from == "option" else []
    result = chat(
        emulator,
        "--message",
        "hello",
        "--message",
        "how are you",
        "--json",
        *token_args,
        token=TOKEN if token_from == "env" else None,
    )

    assert result.status == 0, result.stderr
    events = json_lines(result.stdout)
    assert events[0]["event"] == "Connected"
    assert transcript(events) == [
        ("assistant", GREETING),
        ("user", "hello"),
        ("assistant", "You said: hello"),
        ("user", "how are you"),
        ("assistant", "You said: how are you"),
    ]
    # The server's result object, verbatim, and nothing after it.
    assert events[-1] == {
        "event": "ConversationEnded",
        "result": {"status": "Completed", "errorMessage": None},
    }
    assert all(is_note(line) for line in result.stderr.splitlines()), result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_the_transcript_for_people(emulator: str) -> None:
    result = chat(emulator, "--message", "hello", "--message", "how are you")

    assert result.status == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"agent: {GREETING}",
        "you: hello",
        "agent: You said: hello",
        "you: how are you",
        "agent: You said: how are you",
        "conversation ended: Completed",
    ]
    notes = result.stderr.splitlines()
    assert all(is_note(line) for line in notes), result.stderr
    assert any(line.startswith("[connected (conversation ") for line in notes), result.stderr


def test_the_server_can_come_from_the_environment(emulator: str) -> None:
    result = run_cli(
        "chat",
        "--message",
        "hi",
        "--reply-pause",
        PAUSE,
        env=base_env(BLACKBOX_TOKEN=TOKEN, BLACKBOX_SERVER=emulator),
    )

    assert result.status == 0, result.stderr
    assert "agent: You said: hi" in result.stdout.splitlines()


def test_when_the_agent_ends_the_conversation_the_rest_is_not_sent(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)

    result = chat(emu.server, "--message", "bye", "--message", "never sent", "--json")

    assert result.status == 0, result.stderr
    events = json_lines(result.stdout)
    assert transcript(events)[-1] == ("assistant", "Goodbye! Have a nice day.")
    assert events[-1]["event"] == "ConversationEnded"
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage"]


def test_an_agent_that_does_not_answer_is_noted_and_the_chat_goes_on(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    silent = AgentScript(turns=(Turn(match="quiet", reply=()),))
    emu = blackbox_emulator_factory(token=TOKEN, script=silent)

    result = chat(
        emu.server, "--message", "quiet please", "--message", "hello", "--reply-timeout", "2"
    )

    assert result.status == 0, result.stderr
    assert "[the agent did not answer in time; going on]" in result.stderr.splitlines()
    assert result.stdout.splitlines()[-2:] == [
        "agent: You said: hello",
        "conversation ended: Completed",
    ]


def test_json_lines_tell_where_each_turn_ends(emulator: str) -> None:
    result = chat(emulator, "--message", "hello", "--json")

    assert result.status == 0, result.stderr
    turns = [
        (event["event"], event.get("text"))
        for event in json_lines(result.stdout)
        if event["event"] in ("ReplyStarted", "ReplyEnded", "UserTurnEnded")
    ]
    assert turns == [
        ("ReplyStarted", None),
        ("ReplyEnded", GREETING),
        ("UserTurnEnded", "hello"),
        ("ReplyStarted", None),
        ("ReplyEnded", "You said: hello"),
    ]


async def agent_that_looks_things_up(ws: ServerConnection) -> None:
    """An agent that says a word, asks for a tool, and answers half a second after its result.

    A tool request ends a reply; the answer is the reply after the result.
    """
    asked: list[str] = []

    async def react(core: bb.ServerConnection, event: bb.Event) -> None:
        match event:
            case bb.InitializeReceived():
                core.accept(job_id="job-1", now=time.monotonic())
            case bb.ChatMessageReceived(text=text):
                asked.append(text)
                core.send_text(text, source="user", now=time.monotonic())
                core.send_text("One moment. ", now=time.monotonic())
                core.request_tool(f"t{len(asked)}", "lookup", {}, now=time.monotonic())
            case bb.ToolResponseReceived():
                await asyncio.sleep(0.5)
                core.send_text(f"Looked up: {asked[-1]}.", now=time.monotonic())
            case bb.TerminateReceived():
                core.end(bb.ConversationResultData(status="Completed"), now=time.monotonic())

    await serve_conversation(ws, react)


def test_the_next_message_waits_for_the_answer_after_a_tool() -> None:
    with threaded_server(agent_that_looks_things_up) as port:
        result = chat(f"ws://127.0.0.1:{port}", "--message", "a", "--message", "b")

    assert result.status == 0, result.stderr
    assert result.stdout.splitlines() == [
        "you: a",
        "agent: One moment. ",
        "agent: Looked up: a.",
        "you: b",
        "agent: One moment. ",
        "agent: Looked up: b.",
        "conversation ended: Completed",
    ]
    assert result.stderr.count("[tool lookup({})]") == 2, result.stderr


def test_the_cli_has_no_tools_and_answers_each_request_with_an_error(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, script=EXAMPLES / "agents" / "weather.toml")

    result = chat(emu.server, "--message", "What is the weather in Paris?", "--json")

    assert result.status == 0, result.stderr
    (request,) = [e for e in json_lines(result.stdout) if e["event"] == "ToolRequested"]
    assert request["name"] == "get_weather"
    assert request["args"] == {"city": "Paris", "units": "metric"}
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations
    (response,) = [
        m["content"] for m in record.messages(Direction.IN) if m["type"] == "websocketToolResponse"
    ]
    assert response == {
        "id": request["id"],
        "result": {"error": "LookupError: no tool named 'get_weather' is registered"},
    }


# What reaches the server.


def test_data_reaches_the_agent(blackbox_emulator_factory: EmulatorFactory) -> None:
    script = AgentScript(greeting=("Hi {data.userId}!",))
    emu = blackbox_emulator_factory(token=TOKEN, script=script)

    result = chat(emu.server, "--data", "userId=u-1", "--data", "plan=a=b", "--message", "hi")

    assert result.status == 0, result.stderr
    assert result.stdout.splitlines()[0] == "agent: Hi u-1!"
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations
    initialize = record.messages(Direction.IN)[0]
    assert initialize["type"] == "initialize"
    assert initialize["request"]["callType"] == "chat"
    assert initialize["request"]["additionalData"] == {"userId": "u-1", "plan": "a=b"}


def test_the_origin_header_is_sent(blackbox_emulator_factory: EmulatorFactory) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, allowed_origins=["https://app.example"])

    allowed = chat(emu.server, "--origin", "https://app.example", "--message", "hi")
    refused = chat(emu.server, "--message", "hi")

    assert allowed.status == 0, allowed.stderr
    assert refused.status == 4
    assert "Origin not allowed" in one_error_line(refused)
    emu.wait_until_idle(timeout=5)
    assert [record.origin for record in emu.conversations] == ["https://app.example", None]


# Failures: one line on stderr, the exit status says which kind.


@pytest.mark.parametrize("token_from", ["env", "option"])
def test_a_wrong_token_is_an_authentication_failure(emulator: str, token_from: str) -> None:
    if token_from == "env":
        result = chat(emulator, "--message", "hi", token=WRONG_TOKEN)
    else:
        result = chat(emulator, "--message", "hi", "--token", WRONG_TOKEN, token=None)

    assert result.status == 3
    line = one_error_line(result)
    assert "authentication" in line
    assert "Invalid token" in line
    assert WRONG_TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_a_usage_error(emulator: str, token: str | None) -> None:
    result = chat(emulator, "--message", "hi", token=token)

    assert result.status == 2
    assert one_error_line(result) == "blackbox: no token: pass --token or set BLACKBOX_TOKEN"
    assert result.stdout == ""


def test_a_disabled_integration_is_a_configuration_failure() -> None:
    with emulator_process("--token", TOKEN, "--fault", "error") as (server, _):
        result = chat(server, "--message", "hi")

    assert result.status == 4
    assert "Web integration is not enabled" in one_error_line(result)


def test_a_dropped_connection_is_a_connection_failure() -> None:
    with emulator_process("--token", TOKEN, "--fault", "drop") as (server, _):
        result = chat(server, "--message", "hi", "--json")

    assert result.status == 6
    assert one_error_line(result).startswith("blackbox: connection failed: ")
    events = json_lines(result.stdout)
    assert events[-1]["event"] == "ConversationFailed"
    assert events[-1]["error"]["type"] == "DisconnectedError"


def test_a_silent_server_is_a_timeout() -> None:
    # The driver waits Timeouts.session (10 s) for ``event connection``; the
    # CLI has no option to shorten it.
    with emulator_process("--token", TOKEN, "--fault", "silence") as (server, _):
        result = chat(server, "--message", "hi", timeout=25)

    assert result.status == 5
    assert "no event connection within 10 s" in one_error_line(result)
    assert 9 < result.seconds < 20


def test_garbage_from_the_server_is_reported_and_survived() -> None:
    with emulator_process("--token", TOKEN, "--fault", "garbage") as (server, _):
        result = chat(server, "--message", "hi", "--json")

    assert result.status == 0, result.stderr
    events = json_lines(result.stdout)
    kinds = [event["event"] for event in events]
    assert kinds.count("ProtocolViolation") == 3
    assert kinds.count("UnknownMessageReceived") == 1
    assert events[-1]["event"] == "ConversationEnded"


def test_nothing_listening_is_a_connection_failure() -> None:
    result = chat(f"ws://127.0.0.1:{free_port()}", "--message", "hi", token=WRONG_TOKEN)

    assert result.status == 6
    assert one_error_line(result).startswith("blackbox: connection failed: ")
    assert WRONG_TOKEN not in result.stderr


@pytest.mark.parametrize(
    "server",
    ["https://x", "ws://example.com", "wss://blackbox.dasha.ai/api/v1/ws/webCall"],
    ids=["not-ws", "plain-ws-off-this-machine", "with-a-path"],
)
def test_a_bad_server_is_a_usage_error(server: str) -> None:
    result = chat(server, "--message", "hi")

    assert result.status == 2
    assert server.split("/")[2].split(":")[0] in one_error_line(result)


def test_bad_data_is_a_usage_error(emulator: str) -> None:
    result = chat(emulator, "--data", "no-equals-sign", "--message", "hi")

    assert result.status == 2
    assert "KEY=VALUE" in one_error_line(result)


# Help.


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], ["chat", "emulator", "demo", "Exit status"]),
        (
            ["chat"],
            [
                "--server",
                "--token",
                "--data",
                "--origin",
                "--insecure",
                "--json",
                "--message",
                "--reply-pause",
                "--reply-timeout",
                "BLACKBOX_TOKEN",
                "BLACKBOX_SERVER",
            ],
        ),
        (
            ["emulator"],
            [
                "--host",
                "--port",
                "--token",
                "--script",
                "--fault",
                "drop",
                "silence",
                "--max-connections N conversations at once, or none",
                "--handshake-timeout",
                "--initialize-timeout",
                "--idle-timeout",
                "--max-frame-size CHARS",
                "'Too large message' (default: 1048576)",
                "--max-frame-rate",
                "--max-frame-burst",
                "--max-records N",
            ],
        ),
    ],
    ids=["blackbox", "chat", "emulator"],
)
def test_help(command: list[str], expected: list[str]) -> None:
    result = run_cli(*command, "--help")

    assert result.status == 0
    assert result.stdout.startswith(f"usage: blackbox {' '.join(command)}".rstrip())
    help_text = " ".join(result.stdout.split())  # argparse wraps lines
    for word in expected:
        assert word in help_text
    assert result.stderr == ""


def test_no_command_is_a_usage_error() -> None:
    result = run_cli()

    assert result.status == 2
    assert one_error_line(result) == (
        "blackbox: the following arguments are required: COMMAND (see blackbox --help)"
    )


# The emulator command.


def test_the_emulator_stops_on_ctrl_c() -> None:
    with emulator_process() as (server, process):
        # Without --token it makes one up and shows it: a local test credential.
        found = re.search(r"^token: (\S+)$", process.stdout, re.MULTILINE)
        assert found is not None, process.stdout
        result = chat(server, "--message", "hi", token=found.group(1))
        assert result.status == 0, result.stderr
        process.signal(signal.SIGINT)
        assert process.wait(10) == 130
        assert process.stderr.splitlines()[-1] == "blackbox: interrupted"


def test_the_emulator_serves_a_script_file() -> None:
    script = EXAMPLES / "agents" / "weather.toml"
    with emulator_process("--token", TOKEN, "--script", str(script)) as (server, _):
        result = chat(server, "--message", "hi")

    assert result.status == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "agent: Hi! I am the weather desk. Ask me about the weather in any city."
    )


def test_the_emulator_refuses_a_missing_script(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = run_cli("emulator", "--port", "0", "--script", str(missing), timeout=15)

    assert result.status == 2
    assert str(missing) in one_error_line(result)


def test_the_emulator_reports_a_busy_port() -> None:
    with emulator_process() as (server, _):
        port = server.rsplit(":", 1)[1]
        result = run_cli("emulator", "--port", port, timeout=15)

    assert result.status == 2
    assert "cannot listen" in one_error_line(result)
    assert "Traceback" not in result.stderr


def test_the_emulator_refuses_past_its_max_connections() -> None:
    with emulator_process("--token", TOKEN, "--max-connections", "1") as (server, emulator):
        url = f"{server}/api/v1/ws/webCall?token={TOKEN}"
        with connect_sync(url, close_timeout=2) as held:
            held.send('{"type":"initialize","request":{"callType":"chat"}}')
            assert '"name":"connection"' in str(held.recv(timeout=10))
            refused = chat(server, "--message", "hi")
        served = chat(server, "--message", "hi")

    assert refused.status == 6
    assert one_error_line(refused).endswith("refused the WebSocket: HTTP 503")
    assert served.status == 0, served.stderr
    (warning,) = [line for line in emulator.stderr.splitlines() if "HTTP 503" in line]
    assert "max_connections (1) conversations are open; 1 refused so far" in warning


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--max-connections", "0", "must be a whole number from 1 up or none, not 0"),
        ("--max-frame-rate", "fast", "must be a number above 0 or none, not fast"),
        ("--max-frame-size", "none", "must be a whole number from 1 up, not none"),
        ("--idle-timeout", "-1", "must be a number above 0 or none, not -1"),
    ],
)
def test_the_emulator_refuses_a_bad_limit(option: str, value: str, expected: str) -> None:
    result = run_cli("emulator", "--port", "0", f"{option}={value}", timeout=15)

    assert result.status == 2
    assert result.stderr.splitlines() == [
        f"blackbox: argument {option}: {expected} (see blackbox emulator --help)"
    ]


def test_the_emulator_refuses_an_empty_token() -> None:
    result = run_cli("emulator", "--port", "0", "--token", "", timeout=15)

    assert result.status == 2
    assert "token" in one_error_line(result)


# Ctrl-C.


def test_ctrl_c_while_waiting_for_a_reply_terminates_the_conversation(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    silent = AgentScript(greeting=("Hi!",), turns=(Turn(match="wait", reply=()),))
    emu = blackbox_emulator_factory(token=TOKEN, script=silent)
    process = Process(
        [*CLI, "chat", "--server", emu.server, "--message", "wait", "--reply-pause", PAUSE],
        env=base_env(BLACKBOX_TOKEN=TOKEN),
    )
    try:
        process.wait_for_stdout(lambda out: "you: wait\n" in out, 20)
        process.signal(signal.SIGINT)
        status = process.wait(5)
    finally:
        process.close()

    assert status == 130
    assert process.stderr.splitlines()[-1] == "blackbox: interrupted"
    emu.wait_until_idle(timeout=10)
    (record,) = emu.conversations
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage", "terminate"]


def test_ctrl_c_while_connecting_ends_at_once() -> None:
    with emulator_process("--token", TOKEN, "--fault", "silence") as (server, _):
        process = Process(
            [*CLI, "chat", "--server", server, "--message", "hi"],
            env=base_env(BLACKBOX_TOKEN=TOKEN),
        )
        try:
            process.wait_for_stdout(lambda out: True, 1)
            # Give it time to open the socket and send initialize; then interrupt.
            with pytest.raises(subprocess.TimeoutExpired):
                process.wait(1.5)
            process.signal(signal.SIGINT)
            status = process.wait(5)
        finally:
            process.close()

    assert status == 130
    assert process.stderr.splitlines() == ["blackbox: interrupted"]


def test_ctrl_c_at_the_prompt_exits_at_once(blackbox_emulator_factory: EmulatorFactory) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)
    process = Process(
        [*CLI, "chat", "--server", emu.server, "--reply-pause", PAUSE],
        env=base_env(BLACKBOX_TOKEN=TOKEN),
        stdin=subprocess.PIPE,  # kept open: the user has not typed anything
    )
    try:
        process.wait_for_stdout(lambda out: GREETING in out, 20)
        time.sleep(float(PAUSE) + 1)  # the greeting is over: it reads stdin now
        process.signal(signal.SIGINT)
        try:
            status: int | None = process.wait(5)
        except subprocess.TimeoutExpired:
            status = None
        stderr = process.stderr
    finally:
        process.close()
    emu.wait_until_idle(timeout=10)
    (record,) = emu.conversations

    assert record.types(Direction.IN) == ["initialize", "terminate"]
    assert stderr.splitlines()[-1] == "blackbox: interrupted"
    assert status == 130


# Interactive input.


def test_interactive_lines_until_the_end_of_input(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)

    result = run_cli(
        "chat",
        "--server",
        emu.server,
        "--reply-pause",
        PAUSE,
        stdin="hello\n\nhow are you\n",
        env=base_env(BLACKBOX_TOKEN=TOKEN),
    )

    assert result.status == 0, result.stderr
    assert "agent: You said: hello" in result.stdout
    assert "agent: You said: how are you" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("conversation ended: Completed")
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations
    assert record.types(Direction.IN) == [
        "initialize",
        "incomingChatMessage",
        "incomingChatMessage",
        "terminate",
    ]


def test_quit_ends_an_interactive_chat(blackbox_emulator_factory: EmulatorFactory) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)

    result = run_cli(
        "chat",
        "--server",
        emu.server,
        "--reply-pause",
        PAUSE,
        stdin="/quit\nnever sent\n",
        env=base_env(BLACKBOX_TOKEN=TOKEN),
    )

    assert result.status == 0, result.stderr
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations
    assert record.types(Direction.IN) == ["initialize", "terminate"]


def test_interactive_json_output_is_only_json(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)

    result = run_cli(
        "chat",
        "--server",
        emu.server,
        "--reply-pause",
        PAUSE,
        "--json",
        stdin="hello\n",
        env=base_env(BLACKBOX_TOKEN=TOKEN),
    )

    assert result.status == 0, result.stderr
    events = json_lines(result.stdout)
    assert ("user", "hello") in transcript(events)


def test_a_command_that_runs_too_long_is_stopped_and_reported() -> None:
    # The guard every test here relies on: no child outlives its bound.
    with pytest.raises(AssertionError, match="still ran after 2 s"):
        run_cli("emulator", "--port", "0", timeout=2)
