"""The benchmarks' emulator in a process of its own, and what ``/proc`` says of a process.

A benchmark that measures the emulator apart from its client runs itself
again with ``--serve-emulator`` as the child (``serve_in_child``), which
prints the same first line as ``blackbox emulator``; the parent starts and
stops it with ``EmulatorChild`` and reads its figures from ``/proc``
(``cpu_seconds``, ``rss_kib``, ``status_value``, ``open_fds``). The token
goes through the environment (``TOKEN_VARIABLE``), never the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import re
import resource
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Final

import anyio
import anyio.abc
from attrs import define
from blackbox_emulator import Emulator

__all__ = [
    "TOKEN_VARIABLE",
    "EmulatorChild",
    "cpu_seconds",
    "open_fds",
    "raise_fd_limit",
    "rss_kib",
    "serve_in_child",
    "status_value",
]

#: The environment variable that hands the token to the child.
TOKEN_VARIABLE: Final = "BLACKBOX_BENCH_TOKEN"
#: What the child prints once it listens (the first line of ``blackbox emulator``).
_READY: Final = re.compile(r"BlackBox emulator listening on (ws://\S+)")


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time process ``pid`` has used (``/proc/PID/stat``)."""
    # The command's name (field 2) may hold spaces: count the fields after its ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_value(pid: int, name: str) -> int:
    """The number of a ``/proc/PID/status`` line (``VmRSS`` and ``VmHWM`` in KiB, ``Threads``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])
    raise RuntimeError(f"no {name} for process {pid}")


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid`` in KiB (``VmRSS``)."""
    return status_value(pid, "VmRSS")


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


# The child.


#: What the child tells the parent when asked: JSON values by name.
Report = Callable[[Emulator], Mapping[str, Any]]


def serve_in_child(make: Callable[[str], Emulator], *, report: Report | None = None) -> int:
    """Serve ``make(token)`` until SIGINT; with ``report``, answer each line of stdin.

    The answer is one line of JSON, ``report(emulator)``, taken after a
    ``gc.collect()`` (so that the parent's reading of the memory is fair).
    """
    raise_fd_limit()
    emulator = make(os.environ[TOKEN_VARIABLE])

    async def serve(report: Report | None) -> None:
        async with emulator:
            sys.stdout.write(f"BlackBox emulator listening on {emulator.server}\n")
            sys.stdout.flush()
            if report is None:
                await asyncio.Event().wait()
                return
            while await asyncio.to_thread(sys.stdin.readline):
                gc.collect()
                sys.stdout.write(json.dumps(report(emulator)) + "\n")
                sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(report))
    return 0


# The parent.


@define
class EmulatorChild:
    """The emulator's process, started by ``start``; ``server`` is its URL."""

    process: anyio.abc.Process
    server: str = ""
    errors: IO[bytes] | None = None
    _output: bytes = b""

    @classmethod
    async def start(
        cls,
        script: str | os.PathLike[str],
        token: str,
        *,
        env: Mapping[str, str] | None = None,
        errors: IO[bytes] | None = None,
        bound: float = 30.0,
    ) -> EmulatorChild:
        """Run ``script --serve-emulator`` and wait (``bound`` seconds at most) until it listens.

        Args:
            script: the benchmark that serves the emulator (``serve_in_child``).
            token: the token it accepts.
            env: more environment variables for it.
            errors: where its stderr goes (default: this process's).
            bound: seconds it has to start.
        """
        process = await anyio.open_process(
            [sys.executable, str(Path(script).resolve()), "--serve-emulator"],
            env={**os.environ, **(env or {}), TOKEN_VARIABLE: token},
            stderr=errors,
        )
        child = cls(process, errors=errors)
        try:
            with anyio.fail_after(bound):
                while (found := _READY.search(await child.line())) is None:
                    pass
        except BaseException:
            with anyio.CancelScope(shield=True):
                await child.stop()
            raise
        child.server = found.group(1)
        return child

    @property
    def pid(self) -> int:
        return self.process.pid

    async def line(self) -> str:
        """The child's next line on stdout.

        Raises:
            anyio.EndOfStream: the child's stdout ended.
        """
        stdout = self.process.stdout
        assert stdout is not None, "stdout is a pipe"
        while b"\n" not in self._output:
            self._output += await stdout.receive()
        line, _, self._output = self._output.partition(b"\n")
        return line.decode()

    async def ask(self) -> dict[str, Any]:
        """The child's ``report``, asked for now."""
        stdin = self.process.stdin
        assert stdin is not None, "stdin is a pipe"
        await stdin.send(b"report\n")
        answer: dict[str, Any] = json.loads(await self.line())
        return answer

    def error_tail(self) -> str:
        """The end of what the child wrote to ``errors``."""
        if self.errors is None:
            return ""
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")[-2000:]

    async def stop(self, bound: float = 5.0) -> None:
        """SIGINT, then SIGKILL if it still runs after ``bound`` seconds."""
        process = self.process
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            with anyio.move_on_after(bound):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()
