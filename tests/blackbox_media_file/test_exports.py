"""The public surface: every module declares ``__all__``; the package re-exports it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import blackbox_media_file


def test_every_module_declares_all_and_defines_it() -> None:
    for info in pkgutil.iter_modules(blackbox_media_file.__path__, "blackbox_media_file."):
        module = importlib.import_module(info.name)
        assert isinstance(module.__all__, list), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_the_package_reexports_the_public_api() -> None:
    for name in blackbox_media_file.__all__:
        assert hasattr(blackbox_media_file, name), name
    for module, names in {
        "errors": ["FileError"],
        "recorder": ["WavRecorder"],
        "session": ["FileSession"],
        "source": ["FileSource", "FRAME_DURATION"],
        "stereo": ["StereoRecorder", "StereoSide", "Channel"],
        "tee": ["FanOutSink", "TeeSource"],
        "turns": ["TurnScript", "TurnEvent", "ClipStarted", "ClipFinished", "StartReason"],
        "vad": ["EnergyVad"],
    }.items():
        for name in names:
            assert getattr(blackbox_media_file, name) is getattr(
                importlib.import_module(f"blackbox_media_file.{module}"), name
            )


def test_importing_the_package_does_not_import_aiortc() -> None:
    # aiortc costs the best part of a second; it is loaded when a session is made.
    code = "import sys, blackbox_media_file; print('aiortc' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert shown.stdout.strip() == "False"
