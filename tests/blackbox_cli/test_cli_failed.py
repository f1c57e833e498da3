"""A conversation whose result is ``Failed`` fails the command: status 7, one line on stderr.

A real ``blackbox emulator`` whose script's result is ``Failed`` (as the
service sends when its side went wrong), and ``blackbox chat`` and
``blackbox call`` run against it as a user runs them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.blackbox_cli._process import base_env, emulator_process, run_cli
from tests.blackbox_media_file._audio import tone, write_wav

TOKEN = "failed-result-token"
#: ``blackbox_cli._main.EXIT_FAILED``, as docs/cli.md documents it.
EXIT_FAILED = 7
REASON = "the agent's backend is down"
FAILED_SCRIPT = f'[result]\nstatus = "Failed"\nerrorMessage = "{REASON}"\n'
LINE = f"blackbox: the conversation ended with a Failed result: {REASON}"


@pytest.fixture
def failing_script(tmp_path: Path) -> Path:
    path = tmp_path / "failing.toml"
    path.write_text(FAILED_SCRIPT, encoding="utf-8")
    return path


def test_the_status_is_the_documented_one() -> None:
    from blackbox_cli import _main

    assert _main.EXIT_FAILED == EXIT_FAILED


def test_a_chat_whose_result_is_failed_exits_with_7(failing_script: Path) -> None:
    with emulator_process("--token", TOKEN, "--script", str(failing_script)) as (server, _):
        result = run_cli(
            "chat", "--server", server, "--message", "hello", "--reply-pause", "0.3",
            env=base_env(BLACKBOX_TOKEN=TOKEN),
        )  # fmt: skip

    assert result.status == EXIT_FAILED, result
    assert f"conversation ended: Failed: {REASON}" in result.stdout
    assert result.stderr.splitlines()[-1] == LINE
    assert "Traceback" not in result.stderr


def test_a_chat_whose_result_is_completed_exits_with_0() -> None:
    with emulator_process("--token", TOKEN) as (server, _):
        result = run_cli(
            "chat", "--server", server, "--message", "hello", "--reply-pause", "0.3",
            env=base_env(BLACKBOX_TOKEN=TOKEN),
        )  # fmt: skip

    assert result.status == 0, result
    assert "conversation ended: Completed" in result.stdout


def test_a_json_chat_whose_result_is_failed_exits_with_7(failing_script: Path) -> None:
    with emulator_process("--token", TOKEN, "--script", str(failing_script)) as (server, _):
        result = run_cli(
            "chat", "--server", server, "--message", "hello", "--reply-pause", "0.3", "--json",
            env=base_env(BLACKBOX_TOKEN=TOKEN),
        )  # fmt: skip

    assert result.status == EXIT_FAILED, result
    last = result.stdout.splitlines()[-1]
    assert '"event": "ConversationEnded"' in last
    assert '"status": "Failed"' in last
    assert result.stderr.splitlines()[-1] == LINE


def test_a_call_whose_result_is_failed_exits_with_7(tmp_path: Path, failing_script: Path) -> None:
    clip = write_wav(tmp_path / "clip.wav", tone(440.0, 1.0, 48000), 48000)
    with emulator_process("--token", TOKEN, "--script", str(failing_script)) as (server, _):
        result = run_cli(
            "call", "--server", server, "--token", TOKEN, "--play", str(clip), "--duration", "3",
            timeout=40,
        )  # fmt: skip

    assert result.status == EXIT_FAILED, result
    assert f"conversation ended: Failed: {REASON}" in result.stdout
    assert result.stderr.splitlines()[-1] == LINE
