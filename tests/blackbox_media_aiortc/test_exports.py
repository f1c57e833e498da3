"""The public surface of ``blackbox_media_aiortc``, and what importing it costs."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import blackbox_media_aiortc
import pytest

MODULES = [
    info.name
    for info in pkgutil.iter_modules(blackbox_media_aiortc.__path__, "blackbox_media_aiortc.")
]


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = vars(module).get("__all__")
    assert exported is not None, f"{name} declares no __all__"
    assert [n for n in exported if not hasattr(module, n)] == []


def test_the_package_exports_the_api_the_file_backend_builds_on() -> None:
    for name in ("AiortcSession", "AudioSource", "AudioSink", "EchoPolicy", "MediaError"):
        assert name in blackbox_media_aiortc.__all__
    assert (
        blackbox_media_aiortc.MediaError is importlib.import_module("blackbox_protocol").MediaError
    )


def test_importing_the_package_does_not_import_aiortc_or_sounddevice() -> None:
    code = (
        "import sys, blackbox_media_aiortc; "
        "print(sorted(m for m in ('aiortc', 'av', 'sounddevice') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
