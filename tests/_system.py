"""Tests that need something from the operating system: declared once, skipped or failed clearly.

A test that needs a system library or program declares it with ``needs``
(``@needs(PORTAUDIO)``, or ``pytestmark = needs(...)`` for a whole module).
When one is missing, the test is skipped with a reason that names it, its
Debian package and the command that installs it::

    needs PortAudio: apt-get install libportaudio2

With ``BLACKBOX_REQUIRE_SYSTEM_PACKAGES=1`` (``.ci/run`` sets it) the test
fails instead, before any of its fixtures runs, so a CI run proves that these
tests ran. The end of the run lists the tests skipped (or failed) this way,
grouped by package.

Each package is looked for the way the code under test finds it: PortAudio by
importing sounddevice (in a child process, so that this one does not load
PortAudio), ALSA with ``ctypes.util.find_library``, Chromium and chromedriver
at the paths the browser test runs them from. Each is looked for once a run,
and only if a selected test needs it.

This module is a pytest plugin (``tests/conftest.py`` loads it).
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

__all__ = [
    "ALSA",
    "CHROMEDRIVER",
    "CHROMEDRIVER_PATH",
    "CHROMIUM",
    "CHROMIUM_PATH",
    "PACKAGES",
    "PORTAUDIO",
    "REQUIRE_VARIABLE",
    "SystemPackage",
    "needs",
]

#: Set to ``1``, a missing system package fails the tests that need it instead of skipping them.
REQUIRE_VARIABLE: Final = "BLACKBOX_REQUIRE_SYSTEM_PACKAGES"
#: The marker ``needs`` puts on a test; its arguments are the ``SystemPackage`` objects.
_MARKER: Final = "system_packages"

CHROMIUM_PATH: Final = Path("/usr/bin/chromium")
CHROMEDRIVER_PATH: Final = Path("/usr/bin/chromedriver")


@dataclass(frozen=True)
class SystemPackage:
    """Something from the operating system that tests need, and the Debian package that has it.

    Attributes:
        what: what the tests need, as the skip reason names it (``PortAudio``).
        debian: the Debian package that provides it (``libportaudio2``).
        probe: whether it is there, found the way the code under test finds it.
    """

    what: str
    debian: str
    probe: Callable[[], bool] = field(compare=False, repr=False)


def _sounddevice_loads_portaudio() -> bool:
    """Whether sounddevice finds PortAudio when imported, as ``blackbox_media_aiortc.devices`` does.

    Absent only when sounddevice says so; any other failure counts as present,
    so that the test runs and shows it.
    """
    done = subprocess.run(
        [sys.executable, "-c", "import sounddevice"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "PortAudio library not found" not in done.stderr


def _finds_library(name: str) -> bool:
    return ctypes.util.find_library(name) is not None


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


PORTAUDIO: Final = SystemPackage("PortAudio", "libportaudio2", _sounddevice_loads_portaudio)
ALSA: Final = SystemPackage("ALSA", "libasound2", functools.partial(_finds_library, "asound"))
CHROMIUM: Final = SystemPackage(
    f"Chromium at {CHROMIUM_PATH}", "chromium", functools.partial(_runnable, CHROMIUM_PATH)
)
CHROMEDRIVER: Final = SystemPackage(
    f"chromedriver at {CHROMEDRIVER_PATH}",
    "chromium-driver",
    functools.partial(_runnable, CHROMEDRIVER_PATH),
)
#: Every system package a test of this project declares (``.ci/run`` installs them all).
PACKAGES: Final = (ALSA, PORTAUDIO, CHROMIUM, CHROMEDRIVER)


def needs(*packages: SystemPackage) -> pytest.MarkDecorator:
    """Declare that a test needs ``packages``: without them it skips, or fails when required.

    Args:
        packages: what the test needs from the operating system.

    Returns:
        A mark for a test function or class, or for a module as ``pytestmark``.
    """
    return pytest.mark.system_packages(*packages)


@functools.cache
def _present(package: SystemPackage) -> bool:
    return package.probe()


def _required() -> bool:
    """Whether ``BLACKBOX_REQUIRE_SYSTEM_PACKAGES`` asks for failures instead of skips.

    Raises:
        pytest.UsageError: it is set to something other than ``1``, ``0`` or nothing.
    """
    value = os.environ.get(REQUIRE_VARIABLE, "")
    if value not in ("", "0", "1"):
        raise pytest.UsageError(
            f"{REQUIRE_VARIABLE}={value!r}: set it to 1 (a missing system package fails "
            "the tests that need it) or 0 (they skip, the default)"
        )
    return value == "1"


def _reason(missing: Sequence[SystemPackage]) -> str:
    what = ", ".join(package.what for package in missing)
    return f"needs {what}: apt-get install {' '.join(package.debian for package in missing)}"


def _missing(item: pytest.Item) -> tuple[SystemPackage, ...]:
    declared: dict[SystemPackage, None] = dict.fromkeys(
        package for mark in item.iter_markers(_MARKER) for package in mark.args
    )
    return tuple(package for package in declared if not _present(package))


def _tests(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


#: The selected tests that lack a system package, by node id, and what each lacks.
_LACKING: Final = pytest.StashKey[dict[str, tuple[SystemPackage, ...]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(*packages): the test needs these system packages (tests/_system.py: needs)",
    )
    _required()  # a bad value is a usage error now, not at the first test that needs a package


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected: look only for what will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lacking: dict[str, tuple[SystemPackage, ...]] = {}
    for item in items:
        missing = _missing(item)
        if missing:
            lacking[item.nodeid] = missing
            if not _required():
                # A skip mark, not pytest.skip(): the summary then points at the test itself.
                item.add_marker(pytest.mark.skip(reason=_reason(missing)))
    config.stash[_LACKING] = lacking


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures, which would fail less clearly
def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = item.config.stash[_LACKING].get(item.nodeid)
    if missing and _required():
        pytest.fail(
            f"{_reason(missing)} ({REQUIRE_VARIABLE}=1: a failure, not a skip)", pytrace=False
        )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lacking = config.stash.get(_LACKING, {})
    reported = {
        report.nodeid
        for outcome in ("skipped", "error")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "nodeid", None) in lacking
    }
    if not reported:
        return
    outcome = "failed" if _required() else "skipped"
    terminalreporter.write_sep("=", f"{_tests(len(reported))} {outcome}: system packages missing")
    by_package: dict[SystemPackage, Counter[str]] = {}
    for nodeid in sorted(reported):
        for package in lacking[nodeid]:
            by_package.setdefault(package, Counter())[nodeid.split("::", 1)[0]] += 1
    for package, files in by_package.items():
        terminalreporter.line(f"{package.debian} ({package.what}): {_tests(files.total())}")
        for path, count in sorted(files.items()):
            terminalreporter.line(f"    {path}: {_tests(count)}")
    debian = " ".join(package.debian for package in by_package)
    terminalreporter.line(f"install them: apt-get install {debian}")
    if outcome == "skipped":
        terminalreporter.line(f"with {REQUIRE_VARIABLE}=1 (as .ci/run sets it) they fail instead")
