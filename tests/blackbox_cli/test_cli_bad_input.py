"""Mistakes a user makes on the command line: one clear line, status 2, nothing touched.

Each test runs ``blackbox`` in a child process as a user would, and checks
the one ``blackbox: ...`` line on stderr, the exit status, that no file
changed (content and modification time) and that no file was created. Where
the command would talk to a server, the server is a bare TCP listener that
the test checks was never connected to. And a reader that goes away (``|
head``) ends the command quietly, with status 141, after the conversation was
terminated.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from blackbox_emulator import Direction, EmulatorFactory

from tests._files import unwritable_directory
from tests.blackbox_cli._process import CLI, Process, Result, base_env, is_note, run_cli
from tests.blackbox_media_file._audio import tone, write_wav

TOKEN = "bad-input-token-5e1d"
#: The status of a usage error (``blackbox_cli._main.EXIT_USAGE``).
USAGE = 2
#: The status of a command whose reader went away (``blackbox_cli._main.EXIT_BROKEN_PIPE``).
BROKEN_PIPE = 141

#: What a file is: its content's digest and its modification time.
Snapshot = dict[str, tuple[str, int]]


def snapshot(directory: Path) -> Snapshot:
    """Every file under ``directory`` (links as themselves), by relative path."""
    found: Snapshot = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(directory))] = (os.readlink(path), 0)
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(directory))] = (digest, path.stat().st_mtime_ns)
    return found


def the_error(result: Result) -> str:
    """The one line on stderr, which must be all there is (no traceback, no note)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("blackbox: "), result.stderr
    return lines[0]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """One second of 440 Hz: a clip to play."""
    return write_wav(tmp_path / "clip.wav", tone(440.0, 1.0, 48000), 48000)


@pytest.fixture
def precious(tmp_path: Path) -> Path:
    """A file from before, that a mistake must not destroy."""
    path = tmp_path / "precious.wav"
    path.write_bytes(b"an earlier recording")
    return path


@pytest.fixture
def listener() -> Iterator[tuple[str, socket.socket]]:
    """A loopback TCP listener, as ``ws://`` URL and socket: it accepts nothing by itself."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield f"ws://127.0.0.1:{server.getsockname()[1]}", server


def assert_never_connected(server: socket.socket) -> None:
    """No connection is waiting to be accepted: the command never connected."""
    with pytest.raises(BlockingIOError):
        server.accept()


def call(server: str, *args: str) -> Result:
    """``blackbox call --server SERVER ARGS...``, the token in the environment."""
    return run_cli("call", "--server", server, *args, env=base_env(BLACKBOX_TOKEN=TOKEN))


# Recordings that would overwrite an input, or each other.


def spellings(tmp_path: Path, clip: Path) -> dict[str, str]:
    """Ways to name ``clip``: as is, with ``.`` and ``..``, a symbolic link, a hard link."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.wav").symlink_to(clip)
    os.link(clip, tmp_path / "hard.wav")
    return {
        "as-is": str(clip),
        "dot": f"{clip.parent}/./{clip.name}",
        "dot-dot": f"{clip.parent}/sub/../{clip.name}",
        "symlink": str(tmp_path / "link.wav"),
        "hard-link": str(tmp_path / "hard.wav"),
    }


@pytest.mark.parametrize("spelling", ["as-is", "dot", "dot-dot", "symlink", "hard-link"])
@pytest.mark.parametrize("option", ["--record", "--record-stereo"])
def test_a_recording_over_the_clip_played_is_refused(
    tmp_path: Path, clip: Path, listener: tuple[str, socket.socket], spelling: str, option: str
) -> None:
    target = spellings(tmp_path, clip)[spelling]
    before = snapshot(tmp_path)
    server, accepting = listener

    result = call(server, "--play", str(clip), option, target)

    assert result.status == USAGE
    assert "recording there would overwrite it" in the_error(result)
    assert target in the_error(result)
    assert snapshot(tmp_path) == before
    assert_never_connected(accepting)


def test_a_recording_over_any_clip_of_a_turn_script_is_refused(
    tmp_path: Path, clip: Path, listener: tuple[str, socket.socket]
) -> None:
    second = write_wav(tmp_path / "second.wav", tone(660.0, 1.0, 48000), 48000)
    before = snapshot(tmp_path)

    result = call(listener[0], "--play", str(clip), "--play", str(second), "--record", str(second))

    assert result.status == USAGE
    assert the_error(result) == (
        f"blackbox: {second}: is also a clip to play: recording there would overwrite it"
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("with_play", [True, False], ids=["files", "devices"])
@pytest.mark.parametrize("same", ["as-is", "dot"])
def test_two_recordings_into_one_file_are_refused(
    tmp_path: Path, clip: Path, listener: tuple[str, socket.socket], with_play: bool, same: str
) -> None:
    mono = tmp_path / "x.wav"
    stereo = str(mono) if same == "as-is" else f"{tmp_path}/./x.wav"
    before = snapshot(tmp_path)
    play = ["--play", str(clip)] if with_play else []

    result = call(listener[0], *play, "--record", str(mono), "--record-stereo", stereo)

    assert result.status == USAGE
    assert "each recording needs a file of its own" in the_error(result)
    assert snapshot(tmp_path) == before
    assert not mono.exists()


# Recordings that cannot be made: nothing is created or replaced before that is known.


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing/x.wav", "missing does not exist"),
        ("clip.wav/x.wav", "Not a directory"),
        ("adir", "it is a directory"),
    ],
    ids=["no-such-directory", "under-a-file", "a-directory"],
)
def test_a_recording_that_cannot_be_made_replaces_no_other(
    tmp_path: Path,
    clip: Path,
    precious: Path,
    listener: tuple[str, socket.socket],
    where: str,
    reason: str,
) -> None:
    (tmp_path / "adir").mkdir()
    before = snapshot(tmp_path)
    target = str(tmp_path / where)

    result = call(
        listener[0], "--play", str(clip), "--record", str(precious), "--record-stereo", target
    )

    assert result.status == USAGE
    line = the_error(result)
    assert line.startswith(f"blackbox: {target}: cannot record here: ")
    assert reason in line
    assert snapshot(tmp_path) == before
    assert_never_connected(listener[1])


def test_a_recording_in_a_directory_not_writable_is_refused(
    tmp_path: Path, clip: Path, precious: Path, listener: tuple[str, socket.socket]
) -> None:
    with unwritable_directory(tmp_path) as locked:
        before = snapshot(tmp_path)
        result = call(
            listener[0],
            *("--play", str(clip), "--record", str(precious)),
            *("--record-stereo", str(locked / "x.wav")),
        )

    assert result.status == USAGE
    assert "is not writable" in the_error(result)
    assert snapshot(tmp_path) == before


# Clips that cannot be played.


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.wav", None, "no such file"),
        ("adir", None, "is a directory"),
        ("notes.wav", b"not audio at all\n" * 20, "not a media file"),
        ("noise.wav", bytes(range(256)) * 8, "not a media file"),
        ("empty.wav", b"", "not a media file"),
    ],
    ids=["missing", "a-directory", "text", "not-utf8-bytes", "empty"],
)
def test_a_clip_that_cannot_be_played_is_refused_before_anything(
    tmp_path: Path,
    listener: tuple[str, socket.socket],
    name: str,
    content: bytes | None,
    reason: str,
) -> None:
    (tmp_path / "adir").mkdir()
    if content is not None:
        (tmp_path / name).write_bytes(content)
    before = snapshot(tmp_path)
    recording = tmp_path / "agent.wav"

    result = call(listener[0], "--play", str(tmp_path / name), "--record", str(recording))

    assert result.status == USAGE
    assert reason in the_error(result)
    assert snapshot(tmp_path) == before
    assert not recording.exists()
    assert_never_connected(listener[1])


# Options checked before any file is touched.


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--server", "https://x"], "the server must be a ws:// or wss:// URL"),
        (["--server", "ws://127.0.0.1:99999"], "port must be 1 to 65535"),
        (["--origin", "example.com"], "an origin is scheme://host[:port]"),
        (["--data", "no-equals-sign"], "--data takes KEY=VALUE"),
        (["--data", "a=1", "--data", "a=2"], "--data gives 'a' twice"),
        (["--half-duplex"], "--half-duplex: for the microphone and speaker"),
        (["--input-device", "1"], "--input-device: for the microphone and speaker"),
    ],
    ids=["server", "port", "origin", "data", "data-twice", "half-duplex", "input-device"],
)
def test_a_wrong_option_touches_no_recording(
    tmp_path: Path,
    clip: Path,
    precious: Path,
    listener: tuple[str, socket.socket],
    options: list[str],
    expected: str,
) -> None:
    before = snapshot(tmp_path)

    # A later --server replaces the listener's: that one must not be tried either.
    result = call(listener[0], *options, "--play", str(clip), "--record", str(precious))

    assert result.status == USAGE
    assert expected in the_error(result)
    assert snapshot(tmp_path) == before
    assert_never_connected(listener[1])


def test_no_token_touches_no_recording(
    tmp_path: Path, clip: Path, precious: Path, listener: tuple[str, socket.socket]
) -> None:
    before = snapshot(tmp_path)

    result = run_cli(
        *("call", "--server", listener[0], "--play", str(clip), "--record", str(precious))
    )

    assert result.status == USAGE
    assert the_error(result) == "blackbox: no token: pass --token or set BLACKBOX_TOKEN"
    assert snapshot(tmp_path) == before


def test_a_device_that_cannot_be_opened_creates_no_recording(
    tmp_path: Path, listener: tuple[str, socket.socket]
) -> None:
    # Without PortAudio the microphone cannot be opened at all; with it, not
    # this one: either way the machine's set-up, reported as blackbox devices does.
    recording = tmp_path / "agent.wav"

    result = call(listener[0], "--input-device", "no such microphone", "--record", str(recording))

    assert result.status == USAGE
    assert "microphone" in the_error(result)
    assert not recording.exists()
    assert_never_connected(listener[1])


# Numbers out of range, for every command that takes one.


@pytest.mark.parametrize("value", ["0", "-1", "-0.5", "nan", "inf", "1e999", "ten", ""])
@pytest.mark.parametrize(
    "command",
    [
        ["chat", "--timeout"],
        ["chat", "--reply-pause"],
        ["chat", "--reply-timeout"],
        ["call", "--timeout"],
        ["call", "--duration"],
    ],
    ids=lambda command: " ".join(command),
)
def test_a_wrong_number_of_seconds_is_a_usage_error(
    listener: tuple[str, socket.socket], command: list[str], value: str
) -> None:
    name, option = command
    what = ["--message", "hi"] if name == "chat" else ["--play", "x.wav"]

    result = run_cli(name, "--server", listener[0], "--token", TOKEN, *what, option, value)

    assert result.status == USAGE
    assert the_error(result) == (
        f"blackbox: argument {option}: must be a positive number of seconds, "
        f"not {value!r} (see blackbox {name} --help)"
    )
    assert_never_connected(listener[1])


@pytest.mark.parametrize("value", ["-1", "65536", "99999", "http", ""])
def test_a_port_out_of_range_is_a_usage_error(value: str) -> None:
    result = run_cli("emulator", "--port", value, timeout=15)

    assert result.status == USAGE
    assert the_error(result) == (
        f"blackbox: argument --port: must be a port from 0 to 65535, not {value!r} "
        "(see blackbox emulator --help)"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["chat", "--message", ""], "argument --message: must not be empty"),
        (["chat", "--message", "  "], "argument --message: must not be empty"),
        (["call", "--record", ""], "argument --record: must be a file's path"),
        (["call", "--play", ""], "argument --play: must be a file's path"),
        (["emulator", "--host", ""], "argument --host: must not be empty"),
        (["emulator", "--script", ""], "argument --script: must be a file's path"),
        (["demo", "--record", ""], "argument --record: must be a file's path"),
        (["emulator", "--fault", "nope"], "argument --fault: invalid choice: 'nope'"),
        (["chat", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_an_empty_or_unknown_value_is_a_usage_error(command: list[str], expected: str) -> None:
    result = run_cli(*command, env=base_env(BLACKBOX_TOKEN=TOKEN), timeout=15)

    assert result.status == USAGE
    assert expected in the_error(result)


# The emulator's script, and the demo's recording.


def test_a_script_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "agent.toml"
    script.write_bytes('greeting = "caf\u00e9"\n'.encode("latin-1"))

    result = run_cli("emulator", "--port", "0", "--script", str(script), timeout=15)

    assert result.status == USAGE
    assert the_error(result) == (
        f"blackbox: cannot use the script {script}: not UTF-8 text (byte 15 is 0xe9)"
    )
    assert result.stdout == ""


def test_a_script_that_is_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    script = tmp_path / "agent.toml"
    script.mkdir()

    result = run_cli("emulator", "--port", "0", "--script", str(script), timeout=15)

    assert result.status == USAGE
    assert the_error(result) == f"blackbox: cannot use the script {script}: Is a directory"


def test_the_demo_checks_its_recording_before_it_starts(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "demo.wav"

    result = run_cli("demo", "--record", str(target), timeout=30)

    assert result.status == USAGE
    # One line: the emulator was never started (it would have said so on stderr).
    assert the_error(result) == (
        f"blackbox: {target}: cannot record here: {target.parent} does not exist"
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


# Closed standard streams, and readers that go away.


def run_shell(command: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``blackbox ARGS...`` started by ``sh -c COMMAND`` (``"$@"`` is blackbox)."""
    return subprocess.run(
        ["sh", "-c", command, "sh", *CLI, *args],
        env=base_env(BLACKBOX_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_closed_stdout_is_refused_before_connecting(listener: tuple[str, socket.socket]) -> None:
    shown = run_shell('exec "$@" >&-', "chat", "--server", listener[0], "--message", "hi")

    assert shown.returncode == USAGE
    assert shown.stderr == (
        "blackbox: standard output is closed; to discard the output, send it to /dev/null\n"
    )
    assert_never_connected(listener[1])


def test_a_closed_stdin_is_refused_before_connecting(listener: tuple[str, socket.socket]) -> None:
    shown = run_shell('exec "$@" <&-', "chat", "--server", listener[0])

    assert shown.returncode == USAGE
    assert shown.stderr == (
        "blackbox: standard input is closed, so nothing can be read: give --message TEXT\n"
    )
    assert_never_connected(listener[1])


@pytest.mark.parametrize("json", [True, False], ids=["json", "transcript"])
def test_a_reader_that_goes_away_ends_the_chat_quietly_and_terminates_it(
    blackbox_emulator_factory: EmulatorFactory, json: bool
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)
    args = [*CLI, "chat", "--server", emu.server, "--reply-pause", "0.4"]
    args += ["--message", "hello", "--message", "and more"] + (["--json"] if json else [])
    process = Process(args, env=base_env(BLACKBOX_TOKEN=TOKEN), stdout_lines=1)  # | head -1
    try:
        status = process.wait(30)
    finally:
        process.close()

    assert status == BROKEN_PIPE, process.stderr
    # Nothing on stderr but the notes of a conversation (no traceback, no error line).
    assert all(is_note(line) for line in process.stderr.splitlines()), process.stderr
    assert len(process.stdout.splitlines()) == 1
    emu.wait_until_idle(timeout=10)
    (record,) = emu.conversations
    assert record.types(Direction.IN)[-1] == "terminate"


def test_a_reader_that_goes_away_ends_a_voice_call_and_keeps_the_recording(
    blackbox_emulator_factory: EmulatorFactory, tmp_path: Path, clip: Path
) -> None:
    emu = blackbox_emulator_factory(token=TOKEN)
    recording = tmp_path / "agent.wav"
    args = ["call", "--server", emu.server, "--play", str(clip), "--record", str(recording)]
    process = Process([*CLI, *args, "--json"], env=base_env(BLACKBOX_TOKEN=TOKEN), stdout_lines=1)
    try:
        status = process.wait(40)
    finally:
        process.close()

    assert status == BROKEN_PIPE, process.stderr
    assert all(is_note(line) for line in process.stderr.splitlines()), process.stderr
    emu.wait_until_idle(timeout=10)
    (record,) = emu.conversations
    assert record.types(Direction.IN)[-1] == "terminate"
    with wave.open(str(recording), "rb") as finished:  # a valid WAV, finished
        assert finished.getnchannels() == 1
        assert finished.getframerate() == 48000


def test_a_reader_that_goes_away_stops_the_emulator_quietly() -> None:
    process = Process([*CLI, "emulator", "--port", "0"], env=base_env(), stdout_lines=0)
    try:
        status = process.wait(15)
    finally:
        process.close()

    assert status == BROKEN_PIPE
    assert process.stderr == ""
