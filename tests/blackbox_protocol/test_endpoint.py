"""The server address rules and the token's redaction."""

from __future__ import annotations

import logging

import pytest
from blackbox_protocol import DEFAULT_SERVER, LocalProtocolError
from blackbox_protocol._endpoint import Endpoint, RedactingLogger

TOKEN = "s3cr3t/+token=="


def test_production_is_wss_on_443() -> None:
    endpoint = Endpoint.parse(DEFAULT_SERVER, TOKEN)
    assert (endpoint.host, endpoint.port, endpoint.secure) == ("blackbox.dasha.ai", 443, True)
    assert endpoint.origin == "wss://blackbox.dasha.ai:443"


def test_the_token_is_url_encoded_into_the_query() -> None:
    endpoint = Endpoint.parse("ws://127.0.0.1:8765", TOKEN)
    assert endpoint.resource == "/api/v1/ws/webCall?token=s3cr3t%2F%2Btoken%3D%3D"
    assert endpoint.uri == "ws://127.0.0.1:8765/api/v1/ws/webCall?token=s3cr3t%2F%2Btoken%3D%3D"


@pytest.mark.parametrize("server", ["ws://127.0.0.1:1", "ws://localhost", "ws://[::1]:9"])
def test_plain_ws_is_allowed_on_loopback(server: str) -> None:
    assert not Endpoint.parse(server, TOKEN).secure


def test_plain_ws_elsewhere_needs_an_explicit_opt_in() -> None:
    with pytest.raises(LocalProtocolError, match="unencrypted"):
        Endpoint.parse("ws://example.com", TOKEN)
    assert Endpoint.parse("ws://example.com", TOKEN, allow_insecure=True).port == 80


@pytest.mark.parametrize(
    "server", ["https://blackbox.dasha.ai", "blackbox.dasha.ai", "wss://h/api/v1/ws/webCall"]
)
def test_other_addresses_are_refused(server: str) -> None:
    with pytest.raises(LocalProtocolError):
        Endpoint.parse(server, TOKEN)


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="empty"):
        Endpoint.parse(DEFAULT_SERVER, "")


def test_the_repr_hides_the_token() -> None:
    endpoint = Endpoint.parse(DEFAULT_SERVER, TOKEN)
    assert TOKEN not in repr(endpoint)
    assert "s3cr3t" not in repr(endpoint)


def test_redact_removes_raw_and_encoded_forms() -> None:
    endpoint = Endpoint.parse(DEFAULT_SERVER, TOKEN)
    text = f"GET {endpoint.resource} raw={TOKEN}"
    assert "s3cr3t" not in endpoint.redact(text)
    assert endpoint.redact(text).count("***") == 2


def test_the_redacting_logger_formats_then_redacts(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = Endpoint.parse(DEFAULT_SERVER, TOKEN)
    adapter = RedactingLogger(logging.getLogger("test.redact"), endpoint)
    with caplog.at_level(logging.DEBUG, logger="test.redact"):
        adapter.debug("> GET %s HTTP/1.1", endpoint.resource)
        adapter.info("no secret in %s", "this")
    assert [r.getMessage() for r in caplog.records] == [
        "> GET /api/v1/ws/webCall?token=*** HTTP/1.1",
        "no secret in this",
    ]
