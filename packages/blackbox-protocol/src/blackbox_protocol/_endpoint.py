"""Where to connect: the service's URL for a server and a token, and keeping the token secret.

The token travels in the URL's query (browsers cannot set headers), so every
URL this SDK shows (logs, reprs, errors) goes through ``redact`` first.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import quote, urlsplit

from attrs import field, frozen

from blackbox_protocol.errors import LocalProtocolError

__all__ = ["DEFAULT_SERVER", "RU_SERVER", "Endpoint", "RedactingLogger"]

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
                empty, or ``ws://`` points off this machine without ``allow_insecure``.
        """
        if not token:
            raise LocalProtocolError("the token is empty")
        parts = urlsplit(server)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise LocalProtocolError(f"the server must be a ws:// or wss:// URL, not {server!r}")
        if parts.path.rstrip("/") or parts.query:
            raise LocalProtocolError(f"give the server without a path or query, not {server!r}")
        secure = parts.scheme == "wss"
        if not secure and not allow_insecure and not _is_loopback(parts.hostname):
            raise LocalProtocolError(
                f"refusing plain ws:// to {parts.hostname}: the token would travel unencrypted "
                "(use wss://, or pass allow_insecure=True)"
            )
        return cls(parts.hostname, parts.port or (443 if secure else 80), secure, token)

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
