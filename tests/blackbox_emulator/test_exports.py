"""The public surface: every module declares ``__all__``; the package re-exports it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import blackbox_emulator


def test_every_module_declares_all_and_defines_it() -> None:
    for info in pkgutil.iter_modules(blackbox_emulator.__path__, "blackbox_emulator."):
        module = importlib.import_module(info.name)
        assert isinstance(module.__all__, list), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_the_package_reexports_the_public_api() -> None:
    for name in blackbox_emulator.__all__:
        assert hasattr(blackbox_emulator, name), name
    for module, names in {
        "emulator": ["Emulator", "serve"],
        "thread": ["EmulatorThread", "run_in_thread", "EmulatorFactory"],
        "script": ["AgentScript", "ScriptError", "Turn", "ToolSpec"],
        "faults": ["Fault"],
        "records": ["ConversationRecord", "Direction", "FrameRecord"],
        "media": ["MediaHook", "MediaFactory"],
    }.items():
        for name in names:
            assert getattr(blackbox_emulator, name) is getattr(
                importlib.import_module(f"blackbox_emulator.{module}"), name
            )


def test_importing_the_package_does_not_import_pytest() -> None:
    code = "import sys, blackbox_emulator; print('pytest' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert shown.stdout.strip() == "False"
