"""Headless Chromium on our call page: its flags, the page's state, the page's server.

The page (``page/call.html`` and ``call.js``) is a minimal web client of the
BlackBox voice flow; it publishes what it sees on ``window.bbState``
(``PageState`` here), and the summary of it on ``window.report`` (``Seen``).
``CallPage`` drives it through selenium; ``PageServer``
serves it over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import functools
import math
import struct
import threading
import time
import wave
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, TypedDict, cast
from urllib.parse import urlencode

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests._system import CHROMEDRIVER_PATH, CHROMIUM_PATH

PAGE_DIR: Final = Path(__file__).parent / "page"

#: The caller's tone: the emulator's agent speaks 700, 1100, 1300 ... Hz
#: (``blackbox_emulator.speech.AGENT_TONES_HZ``) and Chromium's default fake
#: microphone beeps at 400 Hz, so 440 Hz is told apart from all of them.
MIC_HZ: Final = 440.0
MIC_RATE: Final = 48000

#: Bounds of the browser side, in seconds. (Starting is bounded by selenium,
#: which waits about 30 s for chromedriver, and chromedriver, 60 s for Chromium.)
PAGE_LOAD_TIMEOUT: Final = 10.0
SCRIPT_TIMEOUT: Final = 5.0


def chromium_flags(profile: Path, mic_wav: Path) -> list[str]:
    """The command line of a headless Chromium that can take a voice call on loopback."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # getUserMedia without a prompt, from a fake device fed by our WAV (looped).
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        # The agent's audio plays (and WebAudio runs) without a user gesture.
        "--autoplay-policy=no-user-gesture-required",
        # ICE over 127.0.0.1 too (a loopback-only machine has nothing else).
        "--allow-loopback-in-peer-connection",
    ]


def write_tone_wav(path: Path, frequency: float, *, seconds: float = 2.0) -> None:
    """A mono 16-bit WAV of a sine at ``frequency``, half of full scale, with the stdlib."""
    count = round(seconds * MIC_RATE)
    # A whole number of periods, so the looped file has no click at its seam.
    periods = max(1, round(frequency * seconds))
    step = 2 * math.pi * periods / count
    samples = (round(0.5 * 32767 * math.sin(step * n)) for n in range(count))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MIC_RATE)
        out.writeframes(struct.pack(f"<{count}h", *samples))


class Meter(TypedDict):
    """The page's WebAudio measurements of one stream."""

    sampleRate: int | None
    #: ``[ms since the page started, RMS (full scale 1.0), dominant frequency Hz]``
    samples: list[list[float]]
    maxRms: float


class Transcript(TypedDict):
    source: str
    text: str
    t: int


class Close(TypedDict):
    code: int
    reason: str
    t: int


class Stats(TypedDict):
    codec: str | None
    packetsReceived: int
    bytesReceived: int
    packetsSent: int
    bytesSent: int
    audioLevel: float


class PageState(TypedDict):
    """``window.bbState``, as ``page/call.js`` publishes it."""

    phase: str
    socket: str
    connection: dict[str, Any] | None
    events: list[str]
    messages: list[str]
    offerKey: str | None
    offerSdp: str | None
    answerSdp: str | None
    iceGatheringState: str
    iceGatheringCapped: bool
    iceConnectionState: str
    connectionState: str
    #: Milestones, in ms since the page started: mic, socketOpen, connection,
    #: offer, track, answerSent, connection-connected, firstAudio, hangUp, result.
    times: dict[str, int]
    transcripts: list[Transcript]
    result: dict[str, Any] | None
    close: Close | None
    stats: Stats | None
    maxAudioLevel: float
    offers: list[dict[str, Any]]
    answers: int
    packetsAtLastAnswer: int
    offerRejected: str | None
    connectionAtClose: str | None
    serverErrors: list[str]
    problems: list[str]
    longestText: int
    remote: Meter
    local: Meter
    errors: list[str]


class Offer(TypedDict):
    #: ``invite`` or ``sdpOffer``
    key: str | None
    #: the first offer's SDP again
    same: bool


class Seen(TypedDict):
    """``window.report``: what the browser sees of a call, in brief."""

    phase: str
    socket: str
    events: list[str]
    #: The RTCPeerConnection's state: when the socket closed, once it has.
    connectionState: str
    iceConnectionState: str
    offers: list[Offer]
    answers: int
    #: ``packetsReceived`` when the last ``sdpAnswer`` was sent.
    packetsAtLastAnswer: int
    offerRejected: str | None
    #: ``getStats()``'s inbound-rtp (audio): packets, and the highest audioLevel (0 to 1).
    packetsReceived: int
    packetsSent: int
    audioLevel: float
    texts: int
    longestText: int
    closeCode: int | None
    #: ``conversationResult.result.status``
    result: str | None
    serverErrors: list[str]
    problems: list[str]
    errors: list[str]


class CallPage:
    """The page in the module's browser: open it, read its state, wait on it, hang up."""

    def __init__(self, driver: webdriver.Chrome, page_url: str) -> None:
        self.driver = driver
        self.page_url = page_url

    def open(self, server: str, token: str) -> None:
        """Load the page for a call to ``server`` with ``token``; the call starts at once.

        The parameters go in the URL's fragment, which is never sent to the HTTP server.
        """
        # Leave the previous call's page first: a URL that differs only in its
        # fragment would not load the page again.
        self.driver.get("about:blank")
        self.driver.get(f"{self.page_url}#{urlencode({'server': server, 'token': token})}")

    def state(self) -> PageState:
        """A snapshot of ``window.bbState``."""
        return cast(PageState, self.driver.execute_script("return window.bbState;"))

    def wait_for(self, what: str, done: Callable[[PageState], bool], timeout: float) -> PageState:
        """Poll the page until ``done(state)``.

        Raises:
            AssertionError: not within ``timeout`` seconds, or the page reported
                an error; with the page's state and console.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state["errors"]:
                raise AssertionError(f"the page failed waiting for {what}\n{self.report(state)}")
            if done(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:g} s\n{self.report(state)}")
            time.sleep(0.1)

    def seen(self) -> Seen:
        """A snapshot of ``window.report``."""
        return cast(Seen, self.driver.execute_script("return window.report;"))

    def wait_seen(self, what: str, done: Callable[[Seen], bool], timeout: float) -> Seen:
        """Poll ``window.report`` until ``done(seen)``, as ``wait_for`` polls the state.

        Raises:
            AssertionError: not within ``timeout`` seconds, or the page reported
                an error; with what it saw and its console.
        """
        deadline = time.monotonic() + timeout
        while True:
            seen = self.seen()
            if seen["errors"] or done(seen) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if seen["errors"] or not done(seen):
            console = self.driver.get_log("browser")  # type: ignore[no-untyped-call]  # selenium's
            failure = "the page failed" if seen["errors"] else f"not within {timeout:g} s"
            raise AssertionError(f"{failure} waiting for {what}\nseen: {seen}\nconsole: {console}")
        return seen

    def hang_up(self) -> None:
        """Send ``terminate`` (the page then waits for the server to close)."""
        self.driver.execute_script("window.bbHangUp();")

    def report(self, state: PageState) -> str:
        """What to show when a test fails: the state, minus the bulk, and the console."""
        brief = {k: v for k, v in state.items() if k not in ("remote", "local", "offerSdp")}
        levels = {"remote": state["remote"]["maxRms"], "local": state["local"]["maxRms"]}
        console = self.driver.get_log("browser")  # type: ignore[no-untyped-call]  # selenium's
        return f"state: {brief}\nmax RMS: {levels}\nconsole: {console}"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves the page's directory without logging each request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class PageServer:
    """The page directory over HTTP on 127.0.0.1 (a secure context, as getUserMedia needs)."""

    def __init__(self) -> None:
        handler = functools.partial(_QuietHandler, directory=str(PAGE_DIR))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="browser-page-server", daemon=True
        )

    @property
    def origin(self) -> str:
        """What the browser sends as ``Origin`` from the page, e.g. ``http://127.0.0.1:5678``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def launch(profile: Path, mic_wav: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM_PATH)
    for flag in chromium_flags(profile, mic_wav):
        options.add_argument(flag)
    # The console (warnings, errors) goes into a failing test's report.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # With the driver's path given, selenium does not run Selenium Manager (no download).
    service = Service(str(CHROMEDRIVER_PATH))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        driver.set_script_timeout(SCRIPT_TIMEOUT)
    except BaseException:
        driver.quit()
        raise
    return driver
