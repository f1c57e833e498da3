"""The pytest plugin: fixtures that run an emulator for a test.

Installed with the package (entry point ``pytest11``), so the fixtures are
there in any test session. The emulator runs in a thread with its own event
loop, so the fixtures serve synchronous, asyncio and trio tests alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Unpack

import pytest

from blackbox_emulator.emulator import Emulator
from blackbox_emulator.thread import EmulatorFactory, EmulatorOptions, EmulatorThread

__all__ = ["blackbox_emulator", "blackbox_emulator_factory"]


@pytest.fixture
def blackbox_emulator() -> Iterator[EmulatorThread]:
    """An emulator with the default script and no fault, on a free loopback port.

    Connect to ``blackbox_emulator.server`` with ``blackbox_emulator.token``;
    ``blackbox_emulator.conversations`` holds what happened.
    """
    with EmulatorThread(Emulator()) as emulator:
        yield emulator


@pytest.fixture
def blackbox_emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators with options: ``blackbox_emulator_factory(script=..., fault="drop")``.

    Takes the keyword arguments of ``Emulator``; every emulator started is
    stopped when the test ends.
    """
    with ExitStack() as running:

        def start(**options: Unpack[EmulatorOptions]) -> EmulatorThread:
            return running.enter_context(EmulatorThread(Emulator(**options)))

        yield start
