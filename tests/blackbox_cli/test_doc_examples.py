"""The examples and the code on the pages quickstart, tools, errors and cli, run for real.

``examples/quickstart_chat.py`` and ``examples/tools_chat.py`` run against an
emulator (as a user runs them, and imported); the
console sessions the pages show are compared with what the commands print; the
snippets that define something are executed and what they define is used.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import blackbox_protocol as bb
import pytest
from blackbox_emulator import AgentScript, Direction, EmulatorFactory, ToolSpec, Turn

from tests.blackbox_cli._process import (
    CLI,
    Process,
    base_env,
    emulator_process,
    free_port,
    run_cli,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
PAGES = ("quickstart.md", "tools.md", "errors.md", "cli.md", "turns.md", "sync.md")
TOKEN = "demo-token"
#: The pages show the emulator on its default port; the tests run it on a free one.
PAGE_SERVER = "ws://127.0.0.1:8765"
#: Seconds of quiet that end a reply, for the imported tools example (the default is 1).
QUIET = 0.4


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quickstart = load_example("quickstart_chat")
tools_chat = load_example("tools_chat")


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` on a page."""
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.DOTALL | re.MULTILINE)


def snippet(name: str, defining: str) -> dict[str, Any]:
    """Execute the one Python block of page ``name`` that contains ``defining``."""
    (code,) = [block for block in blocks(page(name), "python") if defining in block]
    namespace: dict[str, Any] = {"__name__": f"docs.{name}"}
    exec(compile(code, f"docs/{name}", "exec"), namespace)
    return namespace


def session(name: str, command: str) -> tuple[list[str], list[str]]:
    """A console session on page ``name``: the words of the ``$ COMMAND...`` line, and
    the lines it printed (up to the next prompt or the end of the block)."""
    for block in blocks(page(name), "console"):
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if line.startswith(f"$ {command}"):
                output = []
                for printed in lines[index + 1 :]:
                    if printed.startswith("$ "):
                        break
                    output.append(printed)
                return shlex.split(line[2:]), output
    raise AssertionError(f"docs/{name} has no console session of {command!r}")


def run_bounded(function: Callable[..., Any], *args: Any, seconds: float = 20) -> Any:
    """``anyio.run(function, *args)``, failing after ``seconds``."""

    async def bounded() -> Any:
        with anyio.fail_after(seconds):
            return await function(*args)

    return anyio.run(bounded)


def with_env(
    monkeypatch: pytest.MonkeyPatch, server: str, token: str = TOKEN
) -> pytest.MonkeyPatch:
    for key in [key for key in os.environ if key.startswith("BLACKBOX_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("BLACKBOX_SERVER", server)
    monkeypatch.setenv("BLACKBOX_TOKEN", token)
    return monkeypatch


# The pages.


@pytest.mark.parametrize(
    ("name", "example"), [("quickstart.md", "quickstart_chat.py"), ("tools.md", "tools_chat.py")]
)
def test_the_page_shows_its_example_verbatim(name: str, example: str) -> None:
    code = (EXAMPLES / example).read_text(encoding="utf-8")
    assert f"```python\n{code}```" in page(name)


@pytest.mark.parametrize("name", PAGES)
def test_every_python_block_compiles(name: str) -> None:
    for number, code in enumerate(blocks(page(name), "python")):
        compile(code, f"docs/{name} block {number}", "exec")


@pytest.mark.parametrize("name", PAGES)
def test_the_links_between_pages_lead_somewhere(name: str) -> None:
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page(name)):
        assert (DOCS / target).is_file(), f"docs/{name} links to a missing {target}"


# examples/quickstart_chat.py


def test_quickstart_as_the_page_shows_it() -> None:
    emulator_command, emulator_lines = session("quickstart.md", "blackbox emulator")
    example_command, example_lines = session("quickstart.md", "BLACKBOX_SERVER=")
    assert emulator_command == ["blackbox", "emulator", "--token", TOKEN]
    env_words = [word for word in example_command if "=" in word and word.isascii()]
    assert env_words == [f"BLACKBOX_SERVER={PAGE_SERVER}", f"BLACKBOX_TOKEN={TOKEN}"]
    assert example_command[2:4] == ["python", "examples/quickstart_chat.py"]

    with emulator_process(*emulator_command[2:]) as (server, emulator):
        printed = emulator.wait_for_stdout(lambda out: out.count("\n") >= 3, 10)
        process = Process(
            [sys.executable, *example_command[3:]],
            env=base_env(BLACKBOX_SERVER=server, BLACKBOX_TOKEN=TOKEN),
        )
        try:
            status = process.wait(30)
        finally:
            process.close()

    assert printed.splitlines() == [line.replace(PAGE_SERVER, server) for line in emulator_lines]
    assert status == 0, process.stderr
    assert process.stdout.splitlines() == example_lines
    assert process.stderr == ""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_quickstart_chat_returns_the_reply(
    blackbox_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)
    with_env(monkeypatch, emu.server)

    reply = anyio.run(quickstart.chat, "hi", backend=backend)

    assert reply.text == "You said: hi"
    assert reply.chunks == ("You said: ", "hi")
    assert reply.latency is not None
    assert 0 < reply.latency.first_chunk <= reply.latency.end
    emu.wait_until_idle(timeout=5)
    (record,) = emu.conversations
    assert record.types(Direction.IN) == ["initialize", "incomingChatMessage", "terminate"]


def run_main(module: ModuleType, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """``module.main()`` with ``argv``, its ``chat`` quick to decide a reply is over."""
    monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
    monkeypatch.setattr(module, "chat", functools.partial(module.chat, reply_pause=QUIET))
    main: Callable[[], int] = module.main
    return main()


def run_quickstart(server: str, token: str) -> tuple[int, Process]:
    """``python examples/quickstart_chat.py hi`` run to its end, as a user runs it."""
    process = Process(
        [sys.executable, str(EXAMPLES / "quickstart_chat.py"), "hi"],
        env=base_env(BLACKBOX_SERVER=server, BLACKBOX_TOKEN=token),
    )
    try:
        status = process.wait(30)
    finally:
        process.close()
    return status, process


def test_quickstart_fails_on_a_wrong_token_without_showing_it(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)

    status, process = run_quickstart(emu.server, "wrong-s3cret")

    assert status == 1
    last = process.stderr.splitlines()[-1]
    assert last == "blackbox_protocol.errors.AuthenticationError: Invalid token"
    assert "s3cret" not in process.stdout + process.stderr


def test_quickstart_raises_on_a_dropped_connection(
    blackbox_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, fault="drop")
    with_env(monkeypatch, emu.server)

    with pytest.raises(bb.DisconnectedError):
        run_bounded(quickstart.chat, "hi")


# examples/tools_chat.py and the page about tools.


def test_tools_as_the_page_shows_it(
    blackbox_emulator_factory: EmulatorFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator_command, _ = session("tools.md", "blackbox emulator")
    command, expected = session("tools.md", "python examples/tools_chat.py")
    assert emulator_command[2:4] == ["--script", "examples/agents/weather.toml"]
    emu = blackbox_emulator_factory(token=TOKEN, script=ROOT / emulator_command[3])
    with_env(monkeypatch, emu.server)

    status = run_main(tools_chat, monkeypatch, *command[2:])

    assert status == 0
    assert capsys.readouterr().out.splitlines() == expected


#: An agent that says exactly what the tool returned (and greets, as tools_chat expects).
ECHO_TOOL = AgentScript(
    greeting=("Ask me.",),
    turns=(
        Turn(
            match=r"weather in (?P<city>\w+)",
            tool=ToolSpec("get_weather", {"city": "{city}", "units": "metric"}),
            reply=("result={tool_result}",),
        ),
        Turn(
            match=r"town (?P<city>\w+)",
            tool=ToolSpec("get_weather", {"town": "{city}"}),
            reply=("result={tool_result}",),
        ),
    ),
)


def not_json(city: str, units: str) -> dict[str, Any]:
    return {"when": {1, 2}}


def async_handler_from_the_page() -> Mapping[str, bb.ToolHandler]:
    handler: bb.ToolHandler = snippet("tools.md", "async def get_weather")["get_weather"]
    return {"get_weather": handler}


@pytest.mark.parametrize(
    ("tools", "message", "result"),
    [
        (lambda: tools_chat.TOOLS, "weather in Paris", {"temperature": 18, "sky": "cloudy"}),
        (async_handler_from_the_page, "weather in Paris", {"temperature": 21, "sky": "clear"}),
        (
            lambda: tools_chat.TOOLS,
            "weather in Atlantis",
            {"error": "LookupError: no forecast for Atlantis"},
        ),
        (
            dict,
            "weather in Paris",
            {"error": "LookupError: no tool named 'get_weather' is registered"},
        ),
        (
            lambda: tools_chat.TOOLS,
            "town Paris",
            {"error": "TypeError: get_weather() got an unexpected keyword argument 'town'"},
        ),
        (
            lambda: {"get_weather": not_json},
            "weather in Paris",
            {
                "error": "cannot encode websocketToolResponse: "
                "Object of type set is not JSON serializable"
            },
        ),
    ],
    ids=["sync", "async-from-the-page", "raises", "unregistered", "wrong-args", "not-json"],
)
def test_what_the_agent_gets_from_a_tool(
    blackbox_emulator_factory: EmulatorFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tools: Callable[[], Mapping[str, bb.ToolHandler]],
    message: str,
    result: dict[str, Any],
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, script=ECHO_TOOL)
    with_env(monkeypatch, emu.server)

    ended = anyio.run(
        functools.partial(tools_chat.chat, [message], tools=tools(), reply_pause=QUIET)
    )

    assert ended == bb.ConversationResultData(status="Completed")
    said = capsys.readouterr().out.splitlines()[-1]
    assert said.startswith("[tool get_weather(")
    assert json.loads(said.split("] result=", 1)[1]) == result


def test_a_tool_past_its_deadline(blackbox_emulator_factory: EmulatorFactory) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, script=ECHO_TOOL)

    async def never(city: str, units: str) -> None:
        await anyio.sleep_forever()

    async def ask() -> list[bb.Event]:
        events: list[bb.Event] = []
        async with bb.connect(
            emu.token,
            server=emu.server,
            tools={"get_weather": never},
            timeouts=bb.Timeouts(tool=0.5),
        ) as call:
            await call.send_text("weather in Paris")
            async for event in call:
                events.append(event)
                if isinstance(event, bb.TextReceived) and event.text.startswith("result="):
                    break
        return events

    events = run_bounded(ask)

    (timed_out,) = [e for e in events if isinstance(e, bb.ToolTimedOut)]
    assert timed_out.name == "get_weather"
    assert isinstance(events[-1], bb.TextReceived)
    said = json.loads(events[-1].text.removeprefix("result="))
    assert said == {"error": "the tool 'get_weather' did not answer in time"}


def test_a_tool_that_outlives_the_conversation_is_dropped(
    blackbox_emulator_factory: EmulatorFactory,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, script=ECHO_TOOL)

    async def slow(city: str, units: str) -> dict[str, Any]:
        await anyio.sleep(0.5)
        return {"temperature": 1}

    async def end_while_the_tool_runs() -> bb.ConversationResultData | None:
        async with bb.connect(emu.token, server=emu.server, tools={"get_weather": slow}) as call:
            await call.send_text("weather in Paris")
            async for event in call:
                if isinstance(event, bb.ToolRequested):
                    break
            result = await call.terminate()
            await anyio.sleep(1)  # the handler returns meanwhile
        return result

    result = run_bounded(end_while_the_tool_runs)

    assert result == bb.ConversationResultData(status="Completed")


# The page about errors.


@pytest.mark.parametrize(
    ("options", "token", "outcome"),
    [
        ({}, TOKEN, "done"),
        ({}, "not-the-token", "mint a new token"),
        (
            {"fault": "error"},
            TOKEN,
            "fix the integration on the dashboard: Web integration is not enabled",
        ),
        ({"fault": "drop"}, TOKEN, "try again later (DisconnectedError)"),
    ],
    ids=["ok", "wrong-token", "disabled", "dropped"],
)
def test_the_errors_page_sorts_outcomes(
    blackbox_emulator_factory: EmulatorFactory,
    options: dict[str, Any],
    token: str,
    outcome: str,
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, **options)
    talk = snippet("errors.md", "async def talk")["talk"]

    assert run_bounded(talk, token, emu.server) == outcome


def test_the_errors_page_retries_then_gives_up() -> None:
    talk = snippet("errors.md", "async def talk")["talk"]

    # Retry(attempts=2): three tries, 1 s and 2 s apart.
    assert run_bounded(talk, TOKEN, f"ws://127.0.0.1:{free_port()}") == (
        "try again later (ConnectError)"
    )


def test_the_errors_page_logs_violations(
    blackbox_emulator_factory: EmulatorFactory,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN, fault="garbage")
    show = snippet("errors.md", "async def show")["show"]

    async def chat() -> None:
        async with bb.connect(emu.token, server=emu.server) as call:
            await call.send_text("bye")  # the agent says goodbye and ends it
            await show(call)

    with caplog.at_level(logging.INFO, logger="myapp"):
        run_bounded(chat)

    messages = [r.getMessage() for r in caplog.records if r.name == "myapp"]
    assert len([m for m in messages if m.startswith("ignored a frame")]) == 3
    assert "a message type this SDK does not know: futureFeature" in messages
    assert capsys.readouterr().out.endswith("Goodbye! Have a nice day.")


def test_the_errors_page_timeouts() -> None:
    quick = snippet("errors.md", "QUICK =")["QUICK"]

    assert quick == bb.Timeouts(open=5.0, session=5.0, tool=10.0)
    assert (quick.terminate, quick.close) == (bb.Timeouts().terminate, bb.Timeouts().close)


def test_the_retry_delays_the_page_gives() -> None:
    retry = bb.Retry()
    assert (retry.attempts, retry.first_delay, retry.max_delay) == (3, 1.0, 30.0)
    assert [retry.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


# The page about the command line.


def test_the_json_lines_the_page_shows(blackbox_emulator_factory: EmulatorFactory) -> None:
    command, expected = session("cli.md", "blackbox chat --server")
    emu = blackbox_emulator_factory(token=TOKEN)
    args = [emu.server if word == PAGE_SERVER else word for word in command[1:]]

    result = run_cli(*args, "--reply-pause", "0.4", env=base_env(BLACKBOX_TOKEN=TOKEN))

    assert result.status == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    shown = [json.loads(line) for line in expected]
    assert printed[0]["job_id"] is not None
    printed[0]["job_id"] = shown[0]["job_id"]
    assert printed == shown


def test_the_emulator_session_the_cli_page_shows() -> None:
    command, expected = session("cli.md", "blackbox emulator")
    with emulator_process(*command[2:]) as (server, process):
        printed = process.wait_for_stdout(lambda out: out.count("\n") >= 3, 10)

    assert printed.splitlines() == [line.replace(PAGE_SERVER, server) for line in expected]


def test_the_cli_page_lists_every_option() -> None:
    text = page("cli.md")
    for command in ("chat", "emulator"):
        result = run_cli(command, "--help")
        for option in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", result.stdout)) - {"--help"}:
            assert f"`{option}" in text, f"docs/cli.md lacks blackbox {command} {option}"


def test_the_cli_page_shows_the_exit_statuses_of_main() -> None:
    from blackbox_cli import _main

    statuses = {
        _main.EXIT_USAGE,
        _main.EXIT_AUTHENTICATION,
        _main.EXIT_CONFIGURATION,
        _main.EXIT_PROTOCOL,
        _main.EXIT_CONNECTION,
        _main.EXIT_FAILED,
        _main.EXIT_INTERRUPTED,
        _main.EXIT_BROKEN_PIPE,
    }
    rows = re.findall(r"^\| (\d+) \|", page("cli.md"), re.MULTILINE)
    assert {int(row) for row in rows} == {0, *statuses}


@pytest.mark.parametrize(
    "command",
    [
        "blackbox call --play question.wav --record question.wav",
        "blackbox call --play question.wav --record out.wav",
        "blackbox call --play question.wav --duration",
    ],
)
def test_the_mistakes_the_cli_page_shows(tmp_path: Path, command: str) -> None:
    words, expected = session("cli.md", command)
    shown = subprocess.run(
        [*CLI, *words[1:]],
        cwd=tmp_path,
        env=base_env(BLACKBOX_TOKEN="doc-token"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert shown.returncode == 2
    assert shown.stderr.splitlines() == expected
    assert list(tmp_path.iterdir()) == []  # nothing created: the page's promise


def test_the_errors_page_checks_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    snippet("errors.md", "bb.check_server(")

    assert capsys.readouterr().out == (
        "the server must be a ws:// or wss:// URL, not 'https://blackbox.dasha.ai'\n"
    )
