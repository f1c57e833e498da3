"""What a web client sees of the emulator: each offer key, each fault the page can show.

Headless Chromium runs ``page/call.js`` against the emulator once per case and
reads ``window.report`` (``Seen``): the RTCPeerConnection's state (when the
socket closed, once it has), the inbound RTP packets and the highest audio
level ``getStats()`` gave, the WebSocket's close code, the result. Each case
is bounded: it waits for its own sign, holds a second or two where the sign is
an absence (no offer, no ICE, silence), hangs up if the call is still on, and
waits for the close.

``CASES`` is also the table "What your web client will see" in
docs/emulator.md: ``test_the_docs_table_is_the_cases`` holds them together.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
from blackbox_emulator import Direction, Fault, OfferKey, run_in_thread
from blackbox_emulator.faults import HUGE_FRAME_CHARS

from tests._system import CHROMEDRIVER, CHROMIUM, needs
from tests.browser._chromium import CallPage, PageServer, Seen

DOC: Final = Path(__file__).parents[2] / "docs" / "emulator.md"
DOC_SECTION: Final = "## What your web client will see"

#: Inbound RTP packets (20 ms each) that make "the agent's audio arrives": 1 s.
PACKETS: Final = 50
#: ``getStats()`` audioLevel (0 to 1) above which the agent is heard, not silence.
AUDIBLE: Final = 0.01
#: Bounds of each step, in seconds.
SIGN_TIMEOUT: Final = 12.0
CLOSE_TIMEOUT: Final = 8.0


def _playing(seen: Seen) -> bool:
    """The media is up and the agent's audio arrives, loud enough."""
    return (
        seen["connectionState"] == "connected"
        and seen["packetsReceived"] >= PACKETS
        and seen["audioLevel"] > AUDIBLE
    )


def _closed(seen: Seen) -> bool:
    return seen["closeCode"] is not None


@dataclass(frozen=True)
class Case:
    """One run of the page: the emulator's options, the sign awaited, what the browser sees."""

    name: str
    #: What the doc's table says of the case.
    what: str
    fault: Fault | None = None
    offer_key: OfferKey = "invite"
    clean_voice_close: bool = False
    #: The sign that the case has shown itself.
    sign: Callable[[Seen], bool] = _playing
    #: Seconds to hold after the sign, for a sign that is an absence.
    hold: float = 0.0
    #: Whether the test then hangs up (``terminate``): the call is still on.
    hang_up: bool = True
    # What the browser sees at the end.
    connection: str = "connected"
    #: ``True``: at least ``PACKETS``; ``False``: none; ``None``: not asserted (a race).
    packets: bool | None = True
    #: ``True``: above ``AUDIBLE``; ``False``: 0; ``None``: not asserted (a race).
    audio: bool | None = True
    close: int | None = 1006
    result: str | None = "Completed"
    #: The frames the emulator received, in order.
    frames_in: tuple[str, ...] = ("initialize", "sdpAnswer", "terminate")
    #: Anything else the case shows, checked on the final ``Seen``.
    more: Callable[[Seen], bool] = field(default=lambda seen: True)

    def row(self) -> str:
        """The case's row in the doc's table."""
        cells = [
            f"`{self.name}`",
            self.what,
            f"`{self.connection}`",
            {True: f"≥ {PACKETS}", False: "0", None: "a few, or none"}[self.packets],
            {True: f"> {AUDIBLE:g}", False: "0", None: "any"}[self.audio],
            str(self.close) if self.close is not None else "none (still open)",
            f"`{self.result}`" if self.result else "none",
        ]
        return "| " + " | ".join(cells) + " |"


def _answered_twice(seen: Seen) -> bool:
    """The second offer answered, and the agent's audio still arriving since."""
    since = seen["packetsReceived"] - seen["packetsAtLastAnswer"]
    return seen["answers"] == 2 and _playing(seen) and since >= PACKETS


def _offered_twice(seen: Seen) -> bool:
    return len(seen["offers"]) == 2 and _playing(seen)


CASES: Final = [
    Case("invite", "the offer under `invite`, as live sends it; hang up"),
    Case(
        "sdpOffer",
        "the offer under `sdpOffer`, as the guide's code reads it; hang up",
        offer_key="sdpOffer",
    ),
    Case(
        "clean-voice-close",
        "`clean_voice_close=True`; hang up",
        clean_voice_close=True,
        close=1000,
    ),
    Case(
        "drop",
        "the connection aborted after the first agent text",
        Fault.DROP,
        sign=_closed,
        hang_up=False,
        packets=None,
        audio=None,
        result=None,
        frames_in=("initialize", "sdpAnswer"),
    ),
    Case("drop-after-result", "as `invite` (a voice call ends so anyway)", Fault.DROP_AFTER_RESULT),
    Case(
        "error",
        "the error frame after `initialize`",
        Fault.ERROR,
        sign=_closed,
        hang_up=False,
        connection="new",
        packets=False,
        audio=False,
        close=1008,
        result=None,
        more=lambda seen: seen["serverErrors"] == ["Web integration is not enabled"],
        frames_in=("initialize",),
    ),
    Case(
        "silence",
        "nothing after `initialize` (held 2 s)",
        Fault.SILENCE,
        sign=lambda seen: seen["socket"] == "open",
        hold=2.0,
        hang_up=False,
        connection="new",
        packets=False,
        audio=False,
        close=None,
        result=None,
        more=lambda seen: seen["events"] == [],
        frames_in=("initialize",),
    ),
    Case(
        "no-offer",
        "`event connection`, no `sdpInvite` (held 2 s); hang up",
        Fault.NO_OFFER,
        sign=lambda seen: "connection" in seen["events"],
        hold=2.0,
        connection="new",
        packets=False,
        audio=False,
        more=lambda seen: seen["offers"] == [],
        frames_in=("initialize", "terminate"),
    ),
    Case(
        "second-offer",
        "a new offer once connected: the page answers it on the same peer; hang up",
        Fault.SECOND_OFFER,
        sign=_answered_twice,
        more=lambda seen: [offer["same"] for offer in seen["offers"]] == [False, False],
        frames_in=("initialize", "sdpAnswer", "sdpAnswer", "terminate"),
    ),
    Case(
        "duplicate-offer",
        "the same offer again: the page does not answer it; hang up",
        Fault.DUPLICATE_OFFER,
        sign=_offered_twice,
        more=lambda seen: (
            seen["answers"] == 1 and [offer["same"] for offer in seen["offers"]] == [False, True]
        ),
    ),
    Case(
        "bad-offer",
        "an offer the browser rejects: no answer; hang up",
        Fault.BAD_OFFER,
        sign=lambda seen: seen["offerRejected"] is not None,
        connection="new",
        packets=False,
        audio=False,
        more=lambda seen: seen["answers"] == 0,
        frames_in=("initialize", "terminate"),
    ),
    Case(
        "no-ice",
        "an offer whose candidate swallows every packet (held 2 s); hang up",
        Fault.NO_ICE,
        sign=lambda seen: seen["answers"] == 1,
        hold=2.0,
        connection="connecting",
        packets=False,
        audio=False,
        more=lambda seen: seen["texts"] > 0,
    ),
    Case(
        "garbage",
        "frames that are not JSON objects among the replies; hang up",
        Fault.GARBAGE,
        more=lambda seen: len(seen["problems"]) == 3,
    ),
    Case(
        "huge",
        f"a text frame of {HUGE_FRAME_CHARS} characters; hang up",
        Fault.HUGE,
        more=lambda seen: seen["longestText"] == HUGE_FRAME_CHARS,
    ),
]


def _held(browser: CallPage, seconds: float) -> Seen:
    """What the page sees after ``seconds`` more, failing at once on a page error."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = browser.seen()
        assert not seen["errors"], seen
        time.sleep(0.1)
    return browser.seen()


@needs(CHROMIUM, CHROMEDRIVER)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_what_a_browser_sees(browser: CallPage, page_server: PageServer, case: Case) -> None:
    with run_in_thread(
        fault=case.fault,
        offer_key=case.offer_key,
        clean_voice_close=case.clean_voice_close,
        allowed_origins=[page_server.origin],
    ) as emu:
        browser.open(emu.server, emu.token)
        seen = browser.wait_seen(case.name, case.sign, SIGN_TIMEOUT)
        if case.hold:
            seen = _held(browser, case.hold)
        if case.hang_up:
            assert seen["closeCode"] is None, f"the call is still on before hanging up: {seen}"
            browser.hang_up()
        if case.close is not None:
            seen = browser.wait_seen("the close", _closed, CLOSE_TIMEOUT)
        # Leave the page, so that a silent socket ends before the emulator stops.
        browser.driver.get("about:blank")
        emu.wait_until_idle(CLOSE_TIMEOUT)
        (record,) = emu.conversations

    print(f"\n[{case.name}] {seen}")  # the figures, shown with pytest -s
    assert seen["connectionState"] == case.connection
    if case.packets is not None:
        packets = seen["packetsReceived"]
        assert packets >= PACKETS if case.packets else packets == 0, packets
    if case.audio is not None:
        level = seen["audioLevel"]
        assert level > AUDIBLE if case.audio else level == 0, level
    assert seen["closeCode"] == case.close
    assert seen["result"] == case.result
    # The live end of a voice call: ``event closed``, the result, no close frame.
    assert ("closed" in seen["events"]) == (case.result is not None and case.close == 1006)
    assert all(offer["key"] == case.offer_key for offer in seen["offers"])
    assert case.more(seen), seen
    assert record.types(Direction.IN) == list(case.frames_in)


def test_the_docs_table_is_the_cases() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert DOC_SECTION in text, f"{DOC} has no section {DOC_SECTION!r}"
    section = text.split(DOC_SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| `", line)]
    assert rows == [case.row() for case in CASES]
