"""Fixtures for the real-browser voice test: our page, served over HTTP, in headless Chromium.

- ``mic_wav``: a WAV of a known tone that Chromium's fake microphone plays (looped).
- ``page_server``: the page under ``page/``, served from a stdlib HTTP server on loopback.
- ``browser``: one headless Chromium for every module here, driven by selenium,
  with the flags a voice call needs (DESIGN.md section 7), on our page (``CallPage``).

The browser test declares that it needs ``/usr/bin/chromium`` and
``/usr/bin/chromedriver`` (Debian's ``chromium`` and ``chromium-driver``), so
it skips without them, or fails when CI requires them (``tests/_system.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException

from tests.browser._chromium import (
    MIC_HZ,
    CallPage,
    PageServer,
    launch,
    write_tone_wav,
)


@pytest.fixture(scope="package")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mic") / f"tone-{MIC_HZ:g}hz.wav"
    write_tone_wav(path, MIC_HZ)
    return path


@pytest.fixture(scope="package")
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def browser(
    mic_wav: Path, page_server: PageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CallPage]:
    """One headless Chromium for tests/browser; each test opens the page afresh."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    try:
        driver = launch(profile, mic_wav)
    except WebDriverException as exc:
        raise AssertionError(f"headless Chromium did not start: {exc.msg}") from exc
    try:
        yield CallPage(driver, f"{page_server.origin}/call.html")
    finally:
        driver.quit()
