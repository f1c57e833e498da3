"""The placeholders of agent scripts: ``{text}``, ``{tool_result.temperature}``, ``{{``.

A template is parsed once, when its script is loaded, so that a script naming
an unknown variable or leaving a brace unbalanced fails at load time, not in
the middle of a conversation. Rendering never fails: a path that leads
nowhere renders as the empty string, because the values come from the client
(its text, its tool results) and an emulator must not crash on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Placeholder", "parse", "render"]

#: ``{{`` and ``}}`` are literal braces; ``{...}`` is a placeholder; a lone brace is an error.
_TOKEN: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
#: A variable name, then dotted keys (object keys or list indexes).
_PLACEHOLDER: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\.[^.\s]+)*)")


@dataclass(frozen=True)
class Placeholder:
    """A ``{name.key...}`` in a template."""

    name: str
    path: tuple[str, ...]


Part = str | Placeholder


def parse(template: str) -> tuple[Part, ...]:
    """Split a template into literal text and placeholders.

    Raises:
        ValueError: a lone brace, or a placeholder that is not ``{name}`` or
            ``{name.key...}``; the message says which.
    """
    parts: list[Part] = []
    position = 0
    for token in _TOKEN.finditer(template):
        parts.append(template[position : token.start()])
        position = token.end()
        text = token.group()
        if text in ("{{", "}}"):
            parts.append(text[0])
        elif token.group(1) is None:
            raise ValueError(f"a lone {text!r}; write {text * 2!r} for a literal brace")
        else:
            parts.append(_placeholder(token.group(1)))
    parts.append(template[position:])
    return tuple(part for part in parts if part != "")


def _placeholder(inner: str) -> Placeholder:
    match = _PLACEHOLDER.fullmatch(inner.strip())
    if match is None:
        raise ValueError(f"{{{inner}}} is not a placeholder; write {{name}} or {{name.key}}")
    name, dotted = match.groups()
    return Placeholder(name, tuple(dotted.split(".")[1:]))


def render(parts: Sequence[Part], variables: Mapping[str, Any]) -> str:
    """Fill a parsed template: strings as they are, other JSON values as JSON."""
    return "".join(
        part if isinstance(part, str) else _show(_lookup(variables, part)) for part in parts
    )


def _lookup(variables: Mapping[str, Any], placeholder: Placeholder) -> Any:
    value: Any = variables.get(placeholder.name)
    for key in placeholder.path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
