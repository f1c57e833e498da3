"""The exceptions of the SDK, under one root: ``BlackBoxError``.

``LocalProtocolError`` means the app misused the API (fix your code);
``RemoteProtocolError`` and ``InvalidMessage`` mean the peer broke the protocol;
``ServiceError`` subclasses carry the service's own error frames, typed so that
a caller can tell "mint a new token" from "fix the dashboard" from "fix your code".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = [
    "INIT_NOT_RECEIVED",
    "INVALID_TOKEN",
    "MISSING_TOKEN",
    "MULTIPLE_INITS",
    "NOT_ENABLED",
    "ORIGIN_NOT_ALLOWED",
    "SERVICE_ERRORS",
    "TOO_LARGE",
    "AuthenticationError",
    "BlackBoxError",
    "ClientBugError",
    "ConfigurationError",
    "ConnectError",
    "DisconnectedError",
    "InvalidMessage",
    "LocalProtocolError",
    "MediaError",
    "MediaNotConnected",
    "NoReply",
    "ProtocolTimeout",
    "RemoteProtocolError",
    "ReplyTimeout",
    "ServiceError",
    "service_error",
]


class BlackBoxError(Exception):
    """The root of every error this SDK raises or reports."""

    #: Whether connecting again may succeed where this failed (a transport
    #: failure, not a token or configuration error). ``Retry`` uses it, and
    #: only before a conversation started: reconnecting starts a new one.
    retryable: bool = False


class LocalProtocolError(BlackBoxError):
    """The app asked for something the protocol does not allow now.

    The connection's state is unchanged: the call had no effect.
    """


class RemoteProtocolError(BlackBoxError):
    """The peer broke the protocol so that the conversation cannot go on."""


class InvalidMessage(RemoteProtocolError, ValueError):
    """A frame is not a valid message: not JSON, not an object, or a wrong shape.

    Attributes:
        reason: what is wrong, naming the offending path (``$.content.text``).
        message_type: the frame's ``type`` when it had a string one.
    """

    def __init__(self, reason: str, *, message_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_type = message_type


class ProtocolTimeout(BlackBoxError, TimeoutError):
    """Something the protocol waits for did not happen in time.

    Attributes:
        waiting_for: what was awaited, e.g. ``"event connection"``.
        seconds: the limit that passed.
    """

    def __init__(self, waiting_for: str, seconds: float) -> None:
        super().__init__(f"no {waiting_for} within {seconds:g} s")
        self.waiting_for = waiting_for
        self.seconds = seconds

    retryable = True


class ConnectError(BlackBoxError):
    """The connection could not be opened: network, TLS, or the WebSocket handshake.

    Attributes:
        status: the HTTP status when the server refused the handshake, else ``None``.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        # A network failure or a server error may pass; a refusal (4xx) will not.
        self.retryable = status is None or status >= 500


class DisconnectedError(BlackBoxError):
    """The socket closed before the conversation ended.

    Attributes:
        code: the WebSocket close code, or ``None`` when no close frame came (1006).
        reason: the close reason the peer gave, if any.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        shown = "no close frame" if code is None else f"code {code}"
        super().__init__(
            f"the connection closed before the conversation ended ({shown}"
            + (f": {reason})" if reason else ")")
        )
        self.code = code
        self.reason = reason

    retryable = True


class MediaError(BlackBoxError):
    """The media backend failed: the offer could not be answered, or audio stopped.

    Backends raise subclasses that say which; the driver ends the call with it.
    """


class MediaNotConnected(MediaError):
    """A voice call's audio never connected, so the call did not really take place.

    Either the media did not report connected within ``Timeouts.media`` of the
    answer (the driver then ends the call), or the call ended first: hung up by
    the app, or ended by the agent, before any audio could flow. A result that
    came is still ``Call.result``.

    Attributes:
        seconds: the limit that passed, or ``None`` when the call ended before it.
    """

    def __init__(self, reason: str, *, seconds: float | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds


class NoReply(BlackBoxError):
    """The agent did not reply: the conversation ended first (``Call.ask``, ``wait_for_reply``).

    Whatever was said is kept in ``Call.transcript``, and the result in ``Call.result``.
    """


class ReplyTimeout(NoReply, TimeoutError):
    """The agent's reply did not end within the wait given (``Call.ask``, ``wait_for_reply``).

    The conversation goes on; a reply that comes later is still in the transcript.

    Attributes:
        seconds: the wait that passed.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no reply ended within {seconds:g} s")
        self.seconds = seconds


class ServiceError(BlackBoxError):
    """An ``error`` frame from the service; ``message`` is its text, verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(ServiceError):
    """The token is missing, unknown or expired: mint a new one."""


class ConfigurationError(ServiceError):
    """The integration refuses this client: enable it, or allow the origin."""


class ClientBugError(ServiceError):
    """The service says the client broke the protocol (a bug in the client).

    Error texts the documentation does not list map here too, kept verbatim.
    """


#: The documented error strings (PROTOCOL.md section 6), named once for every
#: end that sends or reads them.
MISSING_TOKEN: Final = "Missing token"
INVALID_TOKEN: Final = "Invalid token"
NOT_ENABLED: Final = "Web integration is not enabled"
ORIGIN_NOT_ALLOWED: Final = "Origin not allowed"
INIT_NOT_RECEIVED: Final = "Init message not received"
MULTIPLE_INITS: Final = "Multiple init messages received"
TOO_LARGE: Final = "Too large message"

#: What each documented error string means.
SERVICE_ERRORS: Final[Mapping[str, type[ServiceError]]] = {
    MISSING_TOKEN: AuthenticationError,
    INVALID_TOKEN: AuthenticationError,
    NOT_ENABLED: ConfigurationError,
    ORIGIN_NOT_ALLOWED: ConfigurationError,
    INIT_NOT_RECEIVED: ClientBugError,
    MULTIPLE_INITS: ClientBugError,
    TOO_LARGE: ClientBugError,
}


def service_error(message: str) -> ServiceError:
    """The typed error for an error frame's text (unknown texts: ``ClientBugError``)."""
    return SERVICE_ERRORS.get(message, ClientBugError)(message)
