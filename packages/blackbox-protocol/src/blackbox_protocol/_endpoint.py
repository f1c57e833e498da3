"""Where to connect: the service's URL for a server and a token, and keeping the token secret.

The token travels in the URL's query (browsers cannot set headers), so every
URL this SDK shows (logs, reprs, errors) goes through ``redact`` first.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from attrs import field, frozen

from blackbox_protocol.errors import LocalProtocolError

__all__ = [
    "DEFAULT_SERVER",
    "RU_SERVER",
    "Endpoint",
    "RedactingLogger",
    "check_origin",
    "check_server",
]

#: The production service.
DEFAULT_SERVER = "wss://blackbox.dasha.ai"
#: The other region (separate accounts).
RU_SERVER = "wss://blackbox.ru.dasha.ai"

_PATH = "/api/v1/ws/webCall"


@frozen
class Endpoint:
    """A parsed server address plus the token, which its repr never shows."""

    host: str
    port: int
    secure: bool
    token: str = field(repr=False)

    @classmethod
    def parse(cls, server: str, token: str, *, allow_insecure: bool = False) -> Endpoint:
        """Check ``server`` (``wss://host[:port]``, ``ws://`` on loopback) and add ``token``.

        Raises:
            LocalProtocolError: the address is not a ``ws``/``wss`` URL, the token is
                empty or not a string, or ``ws://`` points off this machine without
                ``allow_insecure``.
        """
        if not isinstance(token, str):
            raise LocalProtocolError(f"the token must be a string, not {type(token).__name__}")
        if not token:
            raise LocalProtocolError("the token is empty")
        host, port, secure = _parse_server(server, allow_insecure=allow_insecure)
        return cls(host, port, secure, token)

    @property
    def origin(self) -> str:
        """The server as given, without the token: safe to show."""
        scheme = "wss" if self.secure else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def resource(self) -> str:
        """The request path with the URL-encoded token: never show it."""
        return f"{_PATH}?token={quote(self.token, safe='')}"

    @property
    def uri(self) -> str:
        """The full URL with the token: never show it."""
        return self.origin + self.resource

    def redact(self, text: str) -> str:
        """``text`` with the token (raw or URL-encoded) replaced by ``***``."""
        for secret in {self.token, quote(self.token, safe=""), quote(self.token)}:
            text = text.replace(secret, "***")
        return text


def check_server(server: str, *, origin: str | None = None, allow_insecure: bool = False) -> None:
    """Check a server address (and an ``Origin``) as ``connect()`` does, without connecting.

    For a program that must know its settings are right before it does
    anything costly (opening files, devices) for the call.

    Args:
        server: ``wss://host[:port]``, or ``ws://`` on loopback.
        origin: an ``Origin`` header: ``scheme://host[:port]``, or ``null``.
        allow_insecure: allow ``ws://`` to a host that is not this machine.

    Raises:
        LocalProtocolError: what ``connect()`` would raise for them, before any I/O.
    """
    _parse_server(server, allow_insecure=allow_insecure)
    if origin is not None:
        check_origin(origin)


def check_origin(origin: str) -> None:
    """Check an ``Origin`` header: a serialized origin (RFC 6454), as a browser sends it.

    Raises:
        LocalProtocolError: it is not a string, or not ``scheme://host[:port]`` nor ``null``.
    """
    if not isinstance(origin, str):
        raise LocalProtocolError(f"the origin must be a string, not {type(origin).__name__}")
    if origin == "null":
        return
    parts = _split(origin)
    if (
        parts is None
        or not (origin.isascii() and origin.isprintable())
        or " " in origin
        or not parts.scheme
        or not parts.hostname
        or _port(parts) == 0
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise LocalProtocolError(
            f"an origin is scheme://host[:port] (as a browser sends it), not {origin!r}"
        )


def _parse_server(server: str, *, allow_insecure: bool) -> tuple[str, int, bool]:
    """The host, port and whether TLS is used, of a server address."""
    if not isinstance(server, str):
        raise LocalProtocolError(f"the server must be a string, not {type(server).__name__}")
    parts = _split(server)
    if parts is None or parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise LocalProtocolError(f"the server must be a ws:// or wss:// URL, not {server!r}")
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        raise LocalProtocolError(f"give the server without a path or query, not {server!r}")
    port = _port(parts)
    if port == 0:
        raise LocalProtocolError(f"the server's port must be 1 to 65535, in {server!r}")
    secure = parts.scheme == "wss"
    if not secure and not allow_insecure and not _is_loopback(parts.hostname):
        raise LocalProtocolError(
            f"refusing plain ws:// to {parts.hostname}: the token would travel unencrypted "
            "(use wss://, or pass allow_insecure=True)"
        )
    return parts.hostname, port or (443 if secure else 80), secure


def _split(url: str) -> SplitResult | None:
    """The parts of ``url``, ``None`` when it does not parse (``ws://[::1``)."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _port(parts: SplitResult) -> int | None:
    """The URL's port, ``None`` when it has none, 0 when it is out of range or not a number."""
    try:
        return parts.port
    except ValueError:
        return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger for libraries that may log the URL: it removes the token from every record."""

    def __init__(self, logger: logging.Logger, endpoint: Endpoint) -> None:
        super().__init__(logger)
        self._endpoint = endpoint

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", self._endpoint.redact(text), **kwargs)
