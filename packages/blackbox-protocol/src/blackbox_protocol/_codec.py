"""The codec: JSON text to message classes and back, through one cattrs converter.

The converter is private and configured once, here. Wire names are the
camelCase of the attribute names; unknown fields land in each class's
``extra`` and are written back by ``encode``. Primitive types are checked
strictly (cattrs would otherwise turn ``5`` into ``"5"``), so a frame of the
wrong shape is an ``InvalidMessage`` with the path of the offending field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from blackbox_protocol.errors import InvalidMessage, LocalProtocolError
from blackbox_protocol.messages import MESSAGE_CLASSES, Message, UnknownMessage

__all__ = ["MAX_NESTING", "decode", "encode", "format_timestamp", "read_shallow", "to_wire"]

#: The deepest nesting of arrays and objects a frame may have (serde_json's
#: default). Without a fixed bound, how deep ``json`` can read depends on the
#: caller's stack: a frame that decodes in a test would fail in the driver.
MAX_NESTING: Final = 128
#: The longest frame ``read_shallow`` prunes: pruning walks every bracket in Python.
_MAX_PRUNED: Final = 1024 * 1024

#: The envelope keys; ``type`` is the tag and never lands in ``extra``.
_ENVELOPE: Final = frozenset({"type", "timestamp", "channelId"})
#: Written even when ``None``: the live server requires ``channelId: null``, a
#: tool's ``null`` result is still a result, and a conversation result keeps its
#: documented shape (``{status, errorMessage}``).
_ALWAYS_WRITTEN: Final = frozenset({"timestamp", "channel_id", "result", "status", "error_message"})


def _wire_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _check(expected: type[Any], label: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        # bool is an int subclass; JSON true is never a valid number here.
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise ValueError(f"expected {label}, got {_json_kind(value)}")
        return value

    return structure


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _structure_hook(converter: cattrs.Converter, cls: type[Any]) -> Callable[[Any, Any], Any]:
    fields = [a for a in attrs.fields(cls) if a.name != "extra"]
    overrides: dict[str, Any] = {a.name: override(rename=_wire_name(a.name)) for a in fields}
    generated = make_dict_structure_fn(cls, converter, extra=override(omit=True), **overrides)
    known = {_wire_name(a.name) for a in fields}
    if issubclass(cls, Message):
        known |= _ENVELOPE

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {_json_kind(value)}")
        instance = generated(value, cls)
        if value.keys() <= known:
            return instance
        extra = {key: item for key, item in value.items() if key not in known}
        return attrs.evolve(instance, extra=extra)

    return structure


def _unstructure_hook(converter: cattrs.Converter, cls: type[Any]) -> Callable[[Any], Any]:
    fields = [a for a in attrs.fields(cls) if a.name != "extra"]
    overrides: dict[str, Any] = {
        a.name: override(rename=_wire_name(a.name), omit_if_default=a.name not in _ALWAYS_WRITTEN)
        for a in fields
    }
    generated = make_dict_unstructure_fn(cls, converter, extra=override(omit=True), **overrides)
    tag = cls.TYPE if issubclass(cls, Message) else None

    def unstructure(value: Any) -> dict[str, Any]:
        out: dict[str, Any] = {} if tag is None else {"type": tag}
        out.update(generated(value))
        for key, item in value.extra.items():
            out.setdefault(key, item)
        return out

    return unstructure


def _structure_unknown(value: dict[str, Any], _: Any) -> UnknownMessage:
    timestamp = value.get("timestamp")
    channel_id = value.get("channelId")
    # An unknown frame is kept whole: envelope fields of an odd type stay in extra.
    lifted = {"type"}
    if isinstance(timestamp, str):
        lifted.add("timestamp")
    if isinstance(channel_id, str) or channel_id is None:
        lifted.add("channelId")
    return UnknownMessage(
        unknown_type=value["type"],
        timestamp=timestamp if isinstance(timestamp, str) else None,
        channel_id=channel_id if isinstance(channel_id, str) else None,
        extra={key: item for key, item in value.items() if key not in lifted},
    )


def _unstructure_unknown(value: UnknownMessage) -> dict[str, Any]:
    return value.raw


def _check_optional(expected: type[Any], label: str) -> Callable[[Any, Any], Any]:
    check = _check(expected, label)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else check(value, _)

    return structure


def _make_converter(*, detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=detailed)
    for primitive, label in ((str, "a string"), (int, "an integer"), (bool, "a boolean")):
        converter.register_structure_hook(primitive, _check(primitive, label))
        # cattrs' own Optional hook dispatches on every call; this one does not.
        converter.register_structure_hook(primitive | None, _check_optional(primitive, label))
    # Free-form objects (additional data, tool args) pass through as parsed.
    converter.register_structure_hook_func(
        lambda cls: cls == Mapping[str, Any], _check(dict, "an object")
    )
    # ... and are written as they are: cattrs would walk them with several Python
    # calls per level, so nesting that json reads could not be written back.
    converter.register_unstructure_hook_func(
        lambda cls: cls == Mapping[str, Any] or cls is Any, lambda value: value
    )
    converter.register_structure_hook(UnknownMessage, _structure_unknown)
    converter.register_unstructure_hook(UnknownMessage, _unstructure_unknown)
    converter.register_structure_hook_factory(
        attrs.has, lambda cls: _structure_hook(converter, cls)
    )
    converter.register_unstructure_hook_factory(
        attrs.has, lambda cls: _unstructure_hook(converter, cls)
    )
    return converter


#: Encodes, and explains a frame the fast converter refused (with every error's path).
_converter: Final = _make_converter(detailed=True)
#: Decodes: the same hooks without cattrs' error collection, which costs on every frame.
_fast: Final = _make_converter(detailed=False)
#: Each known type's structure hook, looked up once rather than per frame.
_STRUCTURE: Final[Mapping[str, Callable[[Any, Any], Message]]] = {
    tag: _fast.get_structure_hook(cls) for tag, cls in MESSAGE_CLASSES.items()
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    # ``1e400`` is JSON syntax, but Python reads it as ``inf``, which encode refuses.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of the range of a double")
    return value


_PATH_PART: Final = re.compile(r"(?<=\.)[a-z0-9_]+")


def _describe(error: BaseException, expected: Any) -> str:
    # Our hooks' ValueErrors already say what was expected and what came.
    if type(error) is ValueError and error.args:
        return str(error)
    return cattrs.v.format_exception(error, expected)


def _reason(error: Exception) -> str:
    """A readable reason with wire (camelCase) paths, from a cattrs error."""
    messages = cattrs.transform_error(error, path="$", format_exception=_describe)
    return "; ".join(_PATH_PART.sub(lambda m: _wire_name(m.group()), m) for m in messages)


#: One decoder for every frame: ``json.loads`` with options builds a new one per call.
_json_decode: Final = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_parse_float
).decode

#: A JSON string, escapes included (the unrolled form, which backtracks least).
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
#: What a bracket does to the depth.
_DEPTH_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_BRACKET_OR_STRING: Final = re.compile(_STRING.pattern + r"|[\[\]{}]")


def _too_deep(text: str) -> bool:
    """Whether ``text`` nests arrays and objects deeper than ``MAX_NESTING``."""
    # Most frames have too few brackets to nest that deep: two C scans settle it.
    if len(text) <= MAX_NESTING or text.count("{") + text.count("[") <= MAX_NESTING:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > MAX_NESTING


def _pruned(text: str, depth: int) -> str:
    """``text`` with every array or object deeper than ``depth`` replaced by ``null``."""
    kept: list[str] = []
    level, start = 0, 0
    for match in _BRACKET_OR_STRING.finditer(text):
        step = _DEPTH_STEP.get(match.group(), 0)
        if step > 0:
            level += 1
            if level == depth + 1:
                kept.append(text[start : match.start()])
        elif step < 0:
            if level == depth + 1:
                kept.append("null")
                start = match.end()
            level -= 1
    kept.append(text[start:])
    return "".join(kept)


def read_shallow(text: str, depth: int = 2) -> Any:
    """The JSON value of a refused frame, as far as it can be read; ``None`` if not at all.

    In a frame nested too deep to decode, arrays and objects deeper than
    ``depth`` read as ``None``, so its envelope still shows (a tool request's
    ``content.id``, say).
    """
    if len(text) > _MAX_PRUNED:
        return None
    try:
        return _json_decode(_pruned(text, depth) if _too_deep(text) else text)
    except (ValueError, RecursionError):
        return None


def decode(text: str) -> Message:
    """Parse one frame.

    Args:
        text: the text of one WebSocket frame.

    Returns:
        The message; an unknown ``type`` gives an ``UnknownMessage`` holding the
        whole object.

    Raises:
        InvalidMessage: the text is not a valid frame: not JSON, nested deeper
            than ``MAX_NESTING``, not an object, no string ``type``, or a known
            type with a wrong shape. The reason names the offending path
            (``$.content.text``).
    """
    if _too_deep(text):
        raise InvalidMessage(f"arrays and objects nest deeper than {MAX_NESTING} levels")
    try:
        value = _json_decode(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidMessage(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidMessage(f"a frame must be a JSON object, got {_json_kind(value)}")
    tag = value.get("type")
    if not isinstance(tag, str):
        raise InvalidMessage(f"$.type: expected a string, got {_json_kind(tag)}")
    cls = MESSAGE_CLASSES.get(tag, UnknownMessage)
    structure: Callable[[Any, Any], Message] = _STRUCTURE.get(tag, _structure_unknown)
    try:
        return structure(value, cls)
    except Exception:
        pass
    # Only a refused frame pays for the detailed converter, which names every bad path.
    try:
        return _converter.structure(value, cls)
    except Exception as exc:  # cattrs wraps every shape error; see _reason
        raise InvalidMessage(f"invalid {tag}: {_reason(exc)}", message_type=tag) from None


def to_wire(value: Any) -> Any:
    """A message or payload object as the JSON value the wire carries (camelCase, extras kept).

    Useful to show what the service sent, e.g. a conversation's result verbatim.
    """
    return _converter.unstructure(value)


def format_timestamp(now: float) -> str:
    """POSIX seconds as the wire's ISO 8601 UTC form, ``2025-01-20T10:00:00.000Z``."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def encode(message: Message, *, now: float | None = None) -> str:
    """Serialize one message to the text of a frame.

    The frame always has ``timestamp`` and ``channelId`` (``null`` unless the
    message carries one); unknown fields kept in ``extra`` are written back.

    Args:
        message: the message to send.
        now: POSIX seconds to stamp a message whose ``timestamp`` is ``None``.

    Raises:
        LocalProtocolError: the message has no timestamp and no ``now`` was
            given, or it holds a value JSON cannot carry.
    """
    if message.timestamp is None:
        if now is None:
            raise LocalProtocolError("the message has no timestamp: pass now=")
        message = attrs.evolve(message, timestamp=format_timestamp(now))
    try:
        wire = _converter.unstructure(message)
        text = json.dumps(wire, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"cannot encode {message.type}: {exc}") from None
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            # A lone surrogate (JSON's "\ud800" decodes to one) has no UTF-8 form:
            # escape everything, as JSON allows, so the frame can still be sent.
            text = json.dumps(wire, separators=(",", ":"), allow_nan=False)
    return text
