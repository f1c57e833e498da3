"""What the transcript printer shows for the events that the subprocess tests cannot provoke."""

from __future__ import annotations

import io

from blackbox_cli._output import HumanPrinter
from blackbox_protocol import EventsDropped, TextReceived


def test_dropped_events_are_a_note_on_stderr_that_ends_the_agents_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = HumanPrinter(out, err)
    printer.event(TextReceived("assistant", "Hello", False))
    printer.event(EventsDropped(12))

    assert out.getvalue() == "agent: Hello\n"
    assert err.getvalue() == "[warning: 12 events came faster than they were shown: dropped]\n"
