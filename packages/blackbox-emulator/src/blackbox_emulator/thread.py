"""Running an emulator outside asyncio: on its own event loop, in a daemon thread.

For synchronous code and for tests under trio (or asyncio: the emulator then
does not share, or block, the test's loop). Starting waits until it listens;
stopping waits until it has stopped; both are bounded.
"""

from __future__ import annotations

import asyncio  # noqa: TID251 -- the emulator's own loop runs in the thread
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from types import TracebackType
from typing import Protocol, Self, TypedDict, Unpack

from blackbox_emulator.emulator import Emulator
from blackbox_emulator.faults import Fault
from blackbox_emulator.media import MediaFactory
from blackbox_emulator.records import ConversationRecord
from blackbox_emulator.script import AgentScript, OfferKey, OfferStyle

__all__ = ["EmulatorFactory", "EmulatorOptions", "EmulatorThread", "run_in_thread"]


class EmulatorOptions(TypedDict, total=False):
    """The keyword arguments of ``Emulator``, for ``run_in_thread`` and the fixtures."""

    host: str
    port: int
    token: str | None
    script: AgentScript | str | os.PathLike[str] | None
    fault: Fault | str | None
    allowed_origins: Iterable[str] | None
    initialize_timeout: float
    media: MediaFactory | None
    offer_style: OfferStyle | None
    offer_key: OfferKey | None
    echo_audio_after: float | None
    record_dir: str | os.PathLike[str] | None
    handshake_timeout: float | None
    idle_timeout: float | None
    max_connections: int | None
    max_frame_size: int
    max_frame_rate: float | None
    max_frame_burst: int
    max_records: int | None
    max_record_frames: int | None
    max_record_size: int | None
    lenient: bool
    tool_call_results: bool | None
    clean_voice_close: bool


class EmulatorFactory(Protocol):
    """Starts an emulator in a thread: the ``blackbox_emulator_factory`` fixture."""

    def __call__(self, **options: Unpack[EmulatorOptions]) -> EmulatorThread:
        """Start ``Emulator(**options)`` in a thread; it is stopped after the test."""
        ...


class EmulatorThread:
    """An ``Emulator`` served from a daemon thread; a (sync) context manager.

    ``with EmulatorThread(Emulator()) as emu:`` serves on ``emu.server`` with
    ``emu.token`` until the block ends.

    Args:
        emulator: the emulator to run, not started; ``None``: ``Emulator()``.
    """

    def __init__(self, emulator: Emulator | None = None) -> None:
        self._emulator = emulator if emulator is not None else Emulator()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the emulator listens.

        Raises:
            RuntimeError: already started.
            TimeoutError: it did not start within ``timeout`` seconds.
            OSError: the address cannot be bound (as raised in the thread).
        """
        if self._thread is not None:
            raise RuntimeError("the emulator thread is already started")
        self._thread = threading.Thread(target=self._main, name="blackbox-emulator", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"the emulator did not start within {timeout:g} s")
        if self._failure is not None:
            self._thread.join()
            failure, self._failure = self._failure, None
            raise failure

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator (closing its conversations) and join the thread; idempotent.

        Raises:
            TimeoutError: the thread did not end within ``timeout`` seconds.
            Exception: whatever ended the emulator's loop in the thread, if anything did.
        """
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if thread.is_alive() and loop is not None and stopping is not None:
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"the emulator did not stop within {timeout:g} s")
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Block until no conversation is running.

        Raises:
            RuntimeError: not running.
            TimeoutError: conversations still run after ``timeout`` seconds.
        """
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the emulator thread is not running")
        future: Future[None] = asyncio.run_coroutine_threadsafe(
            self._emulator.wait_until_idle(), self._loop
        )
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"conversations still running after {timeout:g} s") from None

    # What it serves: the emulator's own, read from this thread.

    @property
    def emulator(self) -> Emulator:
        """The emulator (use its coroutines only on its own loop, in the thread)."""
        return self._emulator

    @property
    def server(self) -> str:
        """The base URL, e.g. ``ws://127.0.0.1:54321``."""
        return self._emulator.server

    @property
    def token(self) -> str:
        """The token the emulator accepts. A credential: never log it."""
        return self._emulator.token

    @property
    def port(self) -> int:
        """The port listened on."""
        return self._emulator.port

    @property
    def conversations(self) -> list[ConversationRecord]:
        """The records of every conversation so far (a snapshot)."""
        return self._emulator.conversations

    def url_for(self, token: str | None) -> str:
        """The full URL of a conversation with ``token``; ``None``: no token."""
        return self._emulator.url_for(token)

    def __repr__(self) -> str:
        return f"<EmulatorThread {self._emulator!r}>"

    # The thread.

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), not lost in the thread
            self._failure = exc
        finally:
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with self._emulator:
            self._started.set()
            await self._stopping.wait()


@contextmanager
def run_in_thread(**options: Unpack[EmulatorOptions]) -> Iterator[EmulatorThread]:
    """Run ``Emulator(**options)`` in a daemon thread for the ``with`` block.

    Raises:
        ValueError, ScriptError: invalid options (before any thread starts).
        TimeoutError: it did not start or stop in time.
    """
    with EmulatorThread(Emulator(**options)) as emulator:
        yield emulator
