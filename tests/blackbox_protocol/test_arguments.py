"""The driver's settings refuse wrong values when made: ``Timeouts``, ``Retry``, servers."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from blackbox_protocol import LocalProtocolError, Retry, Timeouts, check_server

WAITS = [field.name for field in attrs.fields(Timeouts)]


def test_every_wait_is_checked() -> None:
    assert WAITS == [
        "open",
        "session",
        "offer",
        "media",
        "terminate",
        "close",
        "tool",
        "reply",
        "ping_interval",
        "ping_timeout",
    ]


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", WAITS)
def test_a_wait_must_be_positive_and_finite(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"Timeouts.{name} must be a positive, finite number"):
        Timeouts(**{name: value})


@pytest.mark.parametrize("value", ["10", None, True, [1]])
@pytest.mark.parametrize("name", WAITS)
def test_a_wait_must_be_a_number(name: str, value: Any) -> None:
    with pytest.raises(TypeError, match=f"Timeouts.{name} must be a number of seconds"):
        Timeouts(**{name: value})


def test_waits_in_range_are_kept_as_given() -> None:
    timeouts = Timeouts(open=1, session=0.001, tool=86400.0)

    assert (timeouts.open, timeouts.session, timeouts.tool) == (1, 0.001, 86400.0)
    assert timeouts.terminate == 5.0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"attempts": -1}, ValueError, "Retry.attempts must be zero or more, not -1"),
        ({"attempts": 1.5}, TypeError, "Retry.attempts must be a whole number"),
        ({"attempts": True}, TypeError, "Retry.attempts must be a whole number"),
        ({"first_delay": -1}, ValueError, "Retry.first_delay must be zero or more seconds"),
        ({"first_delay": math.nan}, ValueError, "Retry.first_delay must be zero or more"),
        ({"max_delay": math.inf}, ValueError, "Retry.max_delay must be zero or more"),
        ({"first_delay": "1"}, TypeError, "Retry.first_delay must be a number of seconds"),
        ({"first_delay": 5.0, "max_delay": 2.0}, ValueError, r"max_delay \(2.0\) must be at"),
    ],
)
def test_a_retry_out_of_range_is_refused(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Retry(**options)


def test_a_retry_may_try_once_or_at_once() -> None:
    assert Retry(attempts=0).attempts == 0
    assert Retry(first_delay=0, max_delay=0).delay(3) == 0


@pytest.mark.parametrize(
    ("server", "origin", "message"),
    [
        ("https://x", None, "must be a ws:// or wss:// URL"),
        ("wss://h:99999", None, "port must be 1 to 65535"),
        ("wss://h:0", None, "port must be 1 to 65535"),
        ("wss://h:abc", None, "port must be 1 to 65535"),
        ("ws://[::1", None, "must be a ws:// or wss:// URL"),
        ("wss://h#x", None, "without a path or query"),
        ("ws://example.com", None, "unencrypted"),
        (5, None, "the server must be a string, not int"),
        ("wss://h", "example.com", "an origin is scheme://host"),
        ("wss://h", "", "an origin is scheme://host"),
        ("wss://h", "https://a.example/path", "an origin is scheme://host"),
        ("wss://h", "https://a.example\r\nX-Evil: 1", "an origin is scheme://host"),
        ("wss://h", "https://a.example:99999", "an origin is scheme://host"),
        ("wss://h", 5, "the origin must be a string, not int"),
    ],
)
def test_check_server_refuses_what_connect_would(server: Any, origin: Any, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        check_server(server, origin=origin)


@pytest.mark.parametrize("origin", [None, "null", "https://app.example", "http://localhost:3000"])
def test_check_server_accepts_what_connect_takes(origin: str | None) -> None:
    check_server("wss://blackbox.dasha.ai", origin=origin)
    check_server("ws://127.0.0.1:8765", origin=origin)
    check_server("ws://example.com", origin=origin, allow_insecure=True)
