"""Child processes for the command-line tests: bounded waits, output read as it comes.

Every child runs in its own process group, so that a signal (Ctrl-C) reaches
it as a terminal would send it, and so that ``close`` can kill the whole group
whatever the test's outcome.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Final

__all__ = [
    "CLI",
    "Process",
    "Result",
    "base_env",
    "emulator_process",
    "free_port",
    "is_note",
    "run_cli",
]

#: ``blackbox``, as the interpreter running the tests runs it (any venv, no PATH needed).
CLI: Final = (sys.executable, "-m", "blackbox_cli")
#: The line ``blackbox emulator`` prints once it listens.
LISTENING: Final = re.compile(r"BlackBox emulator listening on (ws://127\.0\.0\.1:\d+)\n")


def base_env(**variables: str) -> dict[str, str]:
    """This process's environment without any ``BLACKBOX_*`` variable, plus ``variables``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BLACKBOX_")}
    env.update(variables)
    return env


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def is_note(line: str) -> bool:
    """Whether a stderr line is one of the CLI's bracketed notes (``[connected ...]``)."""
    return line.startswith("[") and line.endswith("]")


class Process:
    """A child process in its own process group; threads collect its stdout and stderr.

    Args:
        args: the command line.
        env: its whole environment.
        stdin: ``subprocess.PIPE`` to write to it (kept open until ``close_stdin``),
            or ``subprocess.DEVNULL``.
        stdout_lines: read only that many lines of its stdout, then close the
            pipe, as ``| head -N`` does (its next write fails: a broken pipe).
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        stdin: int = subprocess.DEVNULL,
        stdout_lines: int | None = None,
    ) -> None:
        self._popen = subprocess.Popen(
            list(args),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
        self._output = {"out": bytearray(), "err": bytearray()}
        self._line_limits = {"out": stdout_lines, "err": None}
        self._changed = threading.Condition()
        assert self._popen.stdout is not None
        assert self._popen.stderr is not None
        self._readers = [
            threading.Thread(target=self._collect, args=(stream, name), daemon=True)
            for stream, name in ((self._popen.stdout, "out"), (self._popen.stderr, "err"))
        ]
        for reader in self._readers:
            reader.start()

    def _collect(self, stream: IO[bytes], name: str) -> None:
        limit = self._line_limits[name]
        if limit == 0:
            stream.close()
            return
        # Byte by byte when lines are counted: nothing past the last line is read.
        size = 1 if limit is not None else 65536
        while chunk := os.read(stream.fileno(), size):
            with self._changed:
                self._output[name] += chunk
                self._changed.notify_all()
                if limit is not None and self._output[name].count(b"\n") >= limit:
                    stream.close()
                    return

    @property
    def pid(self) -> int:
        """The child's process id (also its process group's)."""
        return self._popen.pid

    @property
    def stdout(self) -> str:
        """Its standard output so far."""
        with self._changed:
            return self._output["out"].decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        """Its standard error so far."""
        with self._changed:
            return self._output["err"].decode("utf-8", errors="replace")

    def wait_for_stdout(self, condition: Callable[[str], bool], timeout: float) -> str:
        """Wait until ``condition(stdout)`` holds; return stdout.

        Raises:
            AssertionError: not within ``timeout`` seconds (the output so far is shown).
        """
        with self._changed:
            met = self._changed.wait_for(lambda: condition(self.stdout), timeout)
        assert met, f"waited {timeout} s; stdout: {self.stdout!r}; stderr: {self.stderr!r}"
        return self.stdout

    def write(self, text: str) -> None:
        """Write ``text`` to its stdin (opened with ``stdin=subprocess.PIPE``)."""
        assert self._popen.stdin is not None, "started without stdin=subprocess.PIPE"
        self._popen.stdin.write(text.encode())
        self._popen.stdin.flush()

    def close_stdin(self) -> None:
        """The end of its input."""
        if self._popen.stdin is not None and not self._popen.stdin.closed:
            self._popen.stdin.close()

    @property
    def running(self) -> bool:
        """Whether it has not exited yet."""
        return self._popen.poll() is None

    def signal(self, number: int) -> None:
        """Send a signal to its process group (Ctrl-C is ``signal.SIGINT``)."""
        os.killpg(self._popen.pid, number)

    def wait(self, timeout: float) -> int:
        """Wait for it to exit and for its output to be read; return its exit status.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
        """
        status = self._popen.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return status

    def close(self) -> None:
        """Kill its process group if it still runs; reap it; close the pipes."""
        if self.running:
            with suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait(10)
        for reader in self._readers:
            reader.join(10)
        self.close_stdin()
        for stream in (self._popen.stdout, self._popen.stderr):
            if stream is not None:
                stream.close()


@dataclass(frozen=True)
class Result:
    """How a finished command went."""

    status: int
    stdout: str
    stderr: str
    #: Seconds from start to exit.
    seconds: float


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, timeout: float = 30
) -> Result:
    """Run ``blackbox ARGS...`` to its end, at most ``timeout`` seconds.

    Args:
        args: the arguments after ``blackbox``.
        env: its environment (default: ``base_env()``, with no ``BLACKBOX_*`` variable).
        stdin: its whole input (default: none, as from ``/dev/null``).
        timeout: the bound; past it the process group is killed and the test fails.
    """
    start = time.monotonic()
    process = Process(
        [*CLI, *args],
        env=base_env() if env is None else env,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
    )
    try:
        if stdin is not None:
            process.write(stdin)
            process.close_stdin()
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"blackbox {' '.join(args)} still ran after {timeout} s; "
                f"stdout: {process.stdout!r}; stderr: {process.stderr!r}"
            ) from None
        return Result(status, process.stdout, process.stderr, time.monotonic() - start)
    finally:
        process.close()


@contextmanager
def emulator_process(*options: str) -> Iterator[tuple[str, Process]]:
    """Run ``blackbox emulator --port 0 OPTIONS...``; yield its URL and the process.

    It is stopped with Ctrl-C (SIGINT) at the end, killed if that does not work.
    """
    process = Process([*CLI, "emulator", "--port", "0", *options], env=base_env())
    try:
        output = process.wait_for_stdout(lambda out: LISTENING.search(out) is not None, 30)
        found = LISTENING.search(output)
        assert found is not None
        yield found.group(1), process
        if process.running:
            process.signal(signal.SIGINT)
            process.wait(10)
    finally:
        process.close()
