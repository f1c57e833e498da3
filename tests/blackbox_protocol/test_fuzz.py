"""A short round of the frame fuzzer (``nox -s fuzz`` runs a long one)."""

from __future__ import annotations

from blackbox_protocol import CallType, ConnectionState

from tests.blackbox_protocol._fuzz import fuzz
from tests.blackbox_protocol._links import HISTORIES, setup


def test_fuzzed_frames_raise_nothing_in_any_state() -> None:
    report = fuzz(6_000, seed=20261204)
    assert report.failures == []
    assert report.frames == 6_000
    # Both ends were fed in every state the histories reach: every state but closed.
    expected = {
        ("voice" if history[0] is CallType.WEB_CALL else "chat", role, setup(history).client.state)
        for history in HISTORIES
        for role in ("client", "server")
    }
    assert {(lc, role, ConnectionState(s)) for lc, role, s in report.fed} == expected
    assert {state for _, _, state in expected} == set(ConnectionState) - {ConnectionState.CLOSED}
    # The frames were varied enough to be decoded, refused, and to move some ends.
    assert report.moved
    assert report.invalid
    assert sum(report.decoded.values())
    assert report.events["ProtocolViolation"]
    assert report.events["ConversationFailed"]
