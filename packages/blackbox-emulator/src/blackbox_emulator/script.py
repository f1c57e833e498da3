"""Agent scripts: what the emulated agent says, as plain data (TOML or JSON).

A script is a greeting, rules that pick a reply for each user message (first
match wins), an optional tool request per rule, when to end, and how a voice
call is offered and voiced (``VoiceOptions``, the ``[voice]`` table). The file
format is documented in ``docs/emulator.md``; the built-in script is the data
file ``scripts/default.toml`` of this package.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, get_args

from blackbox_protocol.messages import ConversationResultData

from blackbox_emulator._template import parse

__all__ = [
    "AgentScript",
    "OfferKey",
    "OfferStyle",
    "ScriptError",
    "ToolSpec",
    "Turn",
    "VoiceOptions",
]

#: Variables every template may use: the ``initialize`` request's ``additionalData``.
_ALWAYS: Final = frozenset({"data"})
#: Variables of templates that answer a user message.
_ON_MESSAGE: Final = _ALWAYS | {"text"}


class ScriptError(ValueError):
    """An agent script is not valid.

    Attributes:
        field: where the problem is, e.g. ``turns[1].match``.
        problem: what is wrong there.
        source: the file (or other source) the script came from, if known.
    """

    def __init__(self, field: str, problem: str, *, source: str | None = None) -> None:
        where = f"{field}: " if field else ""
        super().__init__(f"{source}: {where}{problem}" if source else f"{where}{problem}")
        self.field = field
        self.problem = problem
        self.source = source

    def within(self, prefix: str, *, source: str | None = None) -> ScriptError:
        """The same error, its field prefixed (``turns[0]`` + ``reply[1]``)."""
        if not self.field:
            joined = prefix
        elif self.field.startswith("["):
            joined = f"{prefix}{self.field}"
        else:
            joined = f"{prefix}.{self.field}"
        return ScriptError(joined, self.problem, source=source or self.source)


def _check_template(template: str, allowed: frozenset[str], where: str) -> None:
    try:
        parts = parse(template)
    except ValueError as exc:
        raise ScriptError(where, str(exc)) from None
    for part in parts:
        if not isinstance(part, str) and part.name not in allowed:
            known = ", ".join(f"{{{name}}}" for name in sorted(allowed))
            raise ScriptError(where, f"unknown placeholder {{{part.name}}} (known here: {known})")


def _check_chunks(chunks: tuple[str, ...], allowed: frozenset[str], where: str) -> None:
    for index, chunk in enumerate(chunks):
        _check_template(chunk, allowed, f"{where}[{index}]")


def _check_args(value: Any, allowed: frozenset[str], where: str) -> None:
    if isinstance(value, str):
        _check_template(value, allowed, where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_args(item, allowed, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_args(item, allowed, f"{where}[{index}]")


@dataclass(frozen=True)
class ToolSpec:
    """A client-side tool the agent asks for (``websocketToolRequest``).

    Attributes:
        name: the tool's name (``toolName`` on the wire).
        args: its arguments, any JSON object; string values are templates.
    """

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ScriptError("name", "a tool needs a name")


@dataclass(frozen=True)
class Turn:
    """A rule for answering a user message.

    Attributes:
        match: a regular expression searched in the user's text (``re.search``;
            write ``(?i)`` for case-insensitive); ``None`` matches any text. Its
            named groups are template variables.
        reply: the chunks said in answer, after the tool's result when there is
            a tool. Templates: ``{text}``, ``{data...}``, the named groups, and
            ``{tool_result...}`` when there is a tool.
        tool: a tool to request first, or ``None``.
        end: whether the agent ends the conversation after this reply.

    Raises:
        ScriptError: an invalid regular expression or template.
    """

    match: str | None = None
    reply: tuple[str, ...] = ()
    tool: ToolSpec | None = None
    end: bool = False

    def __post_init__(self) -> None:
        groups: frozenset[str] = frozenset()
        if self.match is not None:
            try:
                groups = frozenset(re.compile(self.match).groupindex)
            except re.error as exc:
                raise ScriptError("match", f"not a valid regular expression: {exc}") from None
        allowed = _ON_MESSAGE | groups
        if self.tool is not None:
            _check_args(self.tool.args, allowed, "tool.args")
            allowed |= {"tool_result"}
        _check_chunks(self.reply, allowed, "reply")

    def search(self, text: str) -> re.Match[str] | None:
        """The match of this rule in ``text``, or ``None`` when the rule does not apply."""
        if self.match is None:
            return re.match("", text)
        return re.search(self.match, text)


#: How the emulator's SDP offer is shaped: the live service's SIP style, or aiortc's own.
OfferStyle = Literal["sip", "browser"]
#: The key of ``sdpInvite.data`` that carries the offer: live, or documented.
OfferKey = Literal["invite", "sdpOffer"]


@dataclass(frozen=True)
class VoiceOptions:
    """How a voice call (``webCall``) is offered and voiced.

    Attributes:
        offer_style: ``"sip"`` (default): the offer in the live service's SIP
            shape (``RTP/SAVP``, G.711 and ``telephone-event`` only, no
            BUNDLE, no ``a=mid``/``a=msid``/``a=ssrc``); ``"browser"``:
            aiortc's own offer (``UDP/TLS/RTP/SAVPF``, Opus first, BUNDLE).
        offer_key: the ``sdpInvite.data`` key of the offer: ``"invite"``
            (default, as live) or ``"sdpOffer"`` (as documented).
        echo_audio_after: ``None`` (default): the agent speaks its text as
            tones. A number of seconds: the agent is an echo, playing back
            what it hears that much later (its text is still sent, unvoiced).

    Raises:
        ScriptError: a value is not one of those allowed.
    """

    offer_style: OfferStyle = "sip"
    offer_key: OfferKey = "invite"
    echo_audio_after: float | None = None

    def __post_init__(self) -> None:
        if self.offer_style not in get_args(OfferStyle):
            raise ScriptError("offer_style", f"must be one of {_choices(OfferStyle)}")
        if self.offer_key not in get_args(OfferKey):
            raise ScriptError("offer_key", f"must be one of {_choices(OfferKey)}")
        echo = self.echo_audio_after
        if echo is not None and (
            isinstance(echo, bool)
            or not isinstance(echo, int | float)
            or not math.isfinite(echo)
            or echo < 0
        ):
            raise ScriptError("echo_audio_after", "must be zero or more seconds")


def _choices(kind: Any) -> str:
    return ", ".join(f"{value!r}" for value in get_args(kind))


#: What a script says when it does not set a field.
_DEFAULT_REPLY: Final = ("You said: ", "{text}")


@dataclass(frozen=True)
class AgentScript:
    """What the emulated agent says and does; plain data.

    Attributes:
        greeting: chunks said when the conversation opens (``{data...}``).
        echo_user: whether the user's text is echoed back as ``source: user``.
        chunk_delay: seconds between two chunks of the agent's speech.
        turns: rules for answering user messages; the first that matches wins.
        default_reply: the chunks said when no rule matches (``{text}``, ``{data...}``).
        farewell: chunks said before the agent ends at ``max_turns``.
        max_turns: after this many user messages the agent ends the
            conversation itself; ``None``: never.
        result: the ``conversationResult`` sent when the conversation ends.
        voice: how a voice call is offered and voiced.
        tool_call_results: whether a ``toolCallResult`` follows each tool
            response, as live (where the service sends tool logs at all).

    Raises:
        ScriptError: a field is invalid; the error names it.
    """

    greeting: tuple[str, ...] = ()
    echo_user: bool = True
    chunk_delay: float = 0.0
    turns: tuple[Turn, ...] = ()
    default_reply: tuple[str, ...] = _DEFAULT_REPLY
    farewell: tuple[str, ...] = ()
    max_turns: int | None = None
    result: ConversationResultData = field(
        default_factory=lambda: ConversationResultData(status="Completed")
    )
    voice: VoiceOptions = field(default_factory=VoiceOptions)
    tool_call_results: bool = True

    def __post_init__(self) -> None:
        _check_chunks(self.greeting, _ALWAYS, "greeting")
        _check_chunks(self.farewell, _ALWAYS, "farewell")
        _check_chunks(self.default_reply, _ON_MESSAGE, "default_reply")
        delay = self.chunk_delay
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise ScriptError("chunk_delay", "must be zero or more seconds")
        turns = self.max_turns
        if turns is not None and (isinstance(turns, bool) or not isinstance(turns, int)):
            raise ScriptError("max_turns", "must be a whole number")
        if turns is not None and turns < 1:
            raise ScriptError("max_turns", "must be at least 1")

    @classmethod
    def default(cls) -> AgentScript:
        """The built-in script: a greeting, an echo of each message, ``bye`` ends."""
        text = resources.files("blackbox_emulator").joinpath("scripts/default.toml").read_text()
        return cls.parse(text, format="toml", source="<built-in script>")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AgentScript:
        """Read a script file: ``.toml`` or ``.json``.

        Raises:
            ScriptError: not a TOML or JSON file, not UTF-8 text, not parseable,
                or invalid.
            OSError: the file cannot be read (missing, a directory, no permission).
        """
        path = Path(path)
        formats = {".toml": "toml", ".json": "json"}
        file_format = formats.get(path.suffix.lower())
        if file_format is None:
            raise ScriptError("", "a script is a .toml or .json file", source=str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ScriptError(
                "",
                f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})",
                source=str(path),
            ) from None
        return cls.parse(text, format=file_format, source=str(path))

    @classmethod
    def parse(cls, text: str, *, format: str, source: str | None = None) -> AgentScript:
        """Parse a script from the text of a file.

        Args:
            text: the file's text.
            format: ``"toml"`` or ``"json"``.
            source: where the text came from, for error messages.

        Raises:
            ScriptError: the text does not parse, or the script is invalid.
        """
        try:
            if format == "toml":
                data: Any = tomllib.loads(text)
            elif format == "json":
                data = json.loads(text)
            else:
                raise ScriptError("", f"unknown script format {format!r}", source=source)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ScriptError("", f"not valid {format.upper()}: {exc}", source=source) from None
        except RecursionError:
            raise ScriptError("", "nested too deeply to read", source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> AgentScript:
        """Build a script from parsed data (the tables of a TOML or JSON file).

        Raises:
            ScriptError: a field is missing, unknown, or of the wrong type (or
                the data is nested too deeply to walk).
        """
        try:
            return _script(data)
        except ScriptError as exc:
            raise ScriptError(exc.field, exc.problem, source=source) from None
        except RecursionError:
            raise ScriptError("", "nested too deeply to read", source=source) from None


# From parsed data to the dataclasses, naming the field of every problem.

_SCRIPT_FIELDS: Final = (
    "greeting",
    "echo_user",
    "chunk_delay",
    "turns",
    "default_reply",
    "farewell",
    "max_turns",
    "result",
    "voice",
    "tool_call_results",
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a table"


def _table(value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScriptError(where, f"expected a table, got {_kind(value)}")
    for key in value:
        if key not in known:
            raise ScriptError(
                f"{where}.{key}" if where else key,
                f"unknown field (known: {', '.join(known)})",
            )
    # JSON's null means "not set", as an absent TOML key does.
    return {key: item for key, item in value.items() if item is not None}


def _chunks(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise ScriptError(where, f"expected a string or a list of strings, got {_kind(value)}")
    for index, chunk in enumerate(value):
        if not isinstance(chunk, str):
            raise ScriptError(f"{where}[{index}]", f"expected a string, got {_kind(chunk)}")
    return tuple(value)


def _typed(value: Any, expected: type[Any] | tuple[type[Any], ...], label: str, where: str) -> Any:
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ScriptError(where, f"expected {label}, got {_kind(value)}")
    return value


def _seconds(value: Any, where: str) -> float:
    number = _typed(value, (int, float), "a number of seconds", where)
    try:
        return float(number)
    except OverflowError:  # a JSON integer of hundreds of digits
        raise ScriptError(where, "is too large a number of seconds") from None


def _script(data: Any) -> AgentScript:
    table = _table(data, "", _SCRIPT_FIELDS)
    options: dict[str, Any] = {}
    for name in ("greeting", "default_reply", "farewell"):
        if name in table:
            options[name] = _chunks(table[name], name)
    if "echo_user" in table:
        options["echo_user"] = _typed(table["echo_user"], bool, "true or false", "echo_user")
    if "tool_call_results" in table:
        options["tool_call_results"] = _typed(
            table["tool_call_results"], bool, "true or false", "tool_call_results"
        )
    if "chunk_delay" in table:
        options["chunk_delay"] = _seconds(table["chunk_delay"], "chunk_delay")
    if "max_turns" in table:
        options["max_turns"] = _typed(table["max_turns"], int, "an integer", "max_turns")
    if "result" in table:
        options["result"] = _result(table["result"])
    if "voice" in table:
        options["voice"] = _voice(table["voice"])
    if "turns" in table:
        turns = _typed(table["turns"], list, "a list of tables", "turns")
        options["turns"] = tuple(_turn(turn, f"turns[{i}]") for i, turn in enumerate(turns))
    return AgentScript(**options)


def _turn(value: Any, where: str) -> Turn:
    table = _table(value, where, ("match", "reply", "tool", "end"))
    try:
        return Turn(
            match=_typed(table["match"], str, "a string", "match") if "match" in table else None,
            reply=_chunks(table.get("reply", []), "reply"),
            tool=_tool(table["tool"]) if "tool" in table else None,
            end=_typed(table.get("end", False), bool, "true or false", "end"),
        )
    except ScriptError as exc:
        raise exc.within(where) from None


def _tool(value: Any) -> ToolSpec:
    try:
        table = _table(value, "", ("name", "args"))
        if "name" not in table:
            raise ScriptError("name", "a tool needs a name")
        args = value.get("args", {})
        if not isinstance(args, dict):
            raise ScriptError("args", f"expected a table, got {_kind(args)}")
        return ToolSpec(name=_typed(table["name"], str, "a string", "name"), args=args)
    except ScriptError as exc:
        raise exc.within("tool") from None


def _result(value: Any) -> ConversationResultData:
    if not isinstance(value, dict):
        raise ScriptError("result", f"expected a table, got {_kind(value)}")
    status = value.get("status")
    error_message = value.get("errorMessage")
    if status is not None and not isinstance(status, str):
        raise ScriptError("result.status", f"expected a string, got {_kind(status)}")
    if error_message is not None and not isinstance(error_message, str):
        raise ScriptError("result.errorMessage", f"expected a string, got {_kind(error_message)}")
    extra = {key: item for key, item in value.items() if key not in ("status", "errorMessage")}
    return ConversationResultData(status=status, error_message=error_message, extra=extra)


def _voice(value: Any) -> VoiceOptions:
    table = _table(value, "voice", ("offer_style", "offer_key", "echo_audio_after"))
    options: dict[str, Any] = {}
    for name in ("offer_style", "offer_key"):
        if name in table:
            options[name] = _typed(table[name], str, "a string", f"voice.{name}")
    if "echo_audio_after" in table:
        options["echo_audio_after"] = _seconds(table["echo_audio_after"], "voice.echo_audio_after")
    try:
        return VoiceOptions(**options)
    except ScriptError as exc:
        raise exc.within("voice") from None
