"""Checks of the driver's arguments, made before any I/O: its waits and ``connect()``'s options.

A wrong value fails where it is given (``Timeouts(open=-1)``, ``connect(tools=...)``),
not later in the middle of a call: the waits with ``TypeError``/``ValueError``
as attrs validators, ``connect()`` with ``LocalProtocolError`` before a socket
is opened.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from blackbox_protocol._codec import encode
from blackbox_protocol._endpoint import check_origin
from blackbox_protocol.connection import parse_call_type
from blackbox_protocol.errors import LocalProtocolError
from blackbox_protocol.media import AudioSession
from blackbox_protocol.messages import CallType, Initialize, InitializeRequest

__all__ = [
    "check_call",
    "check_count",
    "check_delay",
    "check_max_delay",
    "every_field",
    "positive_seconds",
]

#: An attrs validator: ``(instance, attribute, value)``, raising when the value is wrong.
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _number(instance: Any, attribute: attrs.Attribute[Any], value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be {what}, "
            f"not {type(value).__name__} {value!r}"
        )
    return float(value)


def positive_seconds(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: a finite number of seconds above zero.

    Raises:
        TypeError: not a number (``bool`` is not one).
        ValueError: zero, negative, NaN or infinite.
    """
    seconds = _number(instance, attribute, value, "a number of seconds")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be a positive, finite "
            f"number of seconds, not {value!r}"
        )


def check_delay(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: a finite number of seconds, zero or more (zero: at once).

    Raises:
        TypeError: not a number.
        ValueError: negative, NaN or infinite.
    """
    seconds = _number(instance, attribute, value, "a number of seconds")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be zero or more seconds "
            f"(finite), not {value!r}"
        )


def check_max_delay(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator for ``Retry.max_delay``: a delay, at least ``first_delay``.

    attrs runs validators once every field is set, so ``first_delay`` is there.
    """
    check_delay(instance, attribute, value)
    if value < instance.first_delay:
        raise ValueError(
            f"{type(instance).__name__}.max_delay ({value!r}) must be at least "
            f"first_delay ({instance.first_delay!r})"
        )


def check_count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: a whole number, zero or more.

    Raises:
        TypeError: not an ``int`` (``bool`` is not one).
        ValueError: negative.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be a whole number, "
            f"not {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be zero or more, not {value!r}"
        )


def every_field(
    validator: Validator,
) -> Callable[[type, list[attrs.Attribute[Any]]], list[attrs.Attribute[Any]]]:
    """An attrs ``field_transformer`` that gives every field ``validator``.

    For classes whose fields are all of one kind (``Timeouts``: every one is a
    wait in seconds), so that a field added later is checked too.
    """

    def transform(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
        return [field.evolve(validator=validator) for field in fields]

    return transform


def check_call(
    call_type: CallType | str,
    *,
    media: AudioSession | None,
    tools: Mapping[str, Callable[..., Any]] | None,
    additional_data: Mapping[str, Any] | None,
    origin: str | None,
    phone: str | None,
    ssl_context: ssl.SSLContext | None,
    max_frame_size: int,
    max_events: int,
    unhandled_tools: str,
    reply_pause: float,
) -> CallType:
    """Check ``connect()``'s options (but the server, the token, the waits and the retries).

    Returns:
        The call type, as a ``CallType``.

    Raises:
        LocalProtocolError: an option is of the wrong type, out of range, or
            does not fit the call type; the message names it.
    """
    kind = parse_call_type(call_type)
    _check_media(kind, media)
    _check_tools(tools)
    if additional_data is not None and not (
        isinstance(additional_data, Mapping) and all(isinstance(k, str) for k in additional_data)
    ):
        raise LocalProtocolError(
            "additional_data must be a mapping with string keys (a JSON object)"
        )
    if kind is CallType.ON_PHONE and not (isinstance(phone, str) and phone):
        raise LocalProtocolError("an onPhone call needs phone= (the number the server dials)")
    if kind is not CallType.ON_PHONE and phone is not None:
        raise LocalProtocolError(f"phone= is for onPhone calls, not {kind.value}")
    # What the socket would refuse to carry (not JSON, NaN) fails now, not once it is open.
    request = InitializeRequest(
        call_type=kind.value, additional_data=additional_data, endpoint=phone
    )
    encode(Initialize(request=request), now=0.0)
    if origin is not None:
        check_origin(origin)
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise LocalProtocolError(
            f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}"
        )
    if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
        raise LocalProtocolError(
            f"max_frame_size must be a whole number of characters, not {max_frame_size!r}"
        )
    if max_frame_size < 1:
        raise LocalProtocolError(f"max_frame_size must be positive, not {max_frame_size}")
    if max_events < 1:
        raise LocalProtocolError(f"max_events must be 1 or more, not {max_events}")
    if unhandled_tools not in ("fail", "app"):
        raise LocalProtocolError(
            f"unhandled_tools must be 'fail' or 'app', not {unhandled_tools!r}"
        )
    if isinstance(reply_pause, bool) or not (
        isinstance(reply_pause, int | float) and 0 < reply_pause < math.inf
    ):
        raise LocalProtocolError(
            f"reply_pause must be a positive number of seconds, not {reply_pause!r}"
        )
    return kind


def _check_media(kind: CallType, media: AudioSession | None) -> None:
    if kind is CallType.WEB_CALL and media is None:
        raise LocalProtocolError("a webCall needs media= (an AudioSession)")
    if kind is not CallType.WEB_CALL and media is not None:
        raise LocalProtocolError(
            f"media= is for webCall calls, not {kind.value} (pass call_type='webCall')"
        )
    if media is not None and not isinstance(media, AudioSession):
        raise LocalProtocolError(f"media must be an AudioSession, not {type(media).__name__}")


def _check_tools(tools: Mapping[str, Callable[..., Any]] | None) -> None:
    if tools is None:
        return
    if not isinstance(tools, Mapping):
        raise LocalProtocolError(
            f"tools must map tool names to handlers, not {type(tools).__name__}"
        )
    for name, handler in tools.items():
        if not (isinstance(name, str) and name):
            raise LocalProtocolError(f"a tool's name must be a non-empty string, not {name!r}")
        if not callable(handler):
            raise LocalProtocolError(
                f"the tool {name!r} must be callable (a function), not {type(handler).__name__}"
            )
