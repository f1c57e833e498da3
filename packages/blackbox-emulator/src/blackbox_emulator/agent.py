"""The scripted agent: what to say and do next, decided from an ``AgentScript``.

It does no I/O: each input (the conversation opened, the user said something,
a tool answered) returns the actions to perform, in order, which the
conversation then carries out on the socket (pacing the chunks). That keeps
the agent's logic testable on its own, and lets the voice path reuse it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from blackbox_protocol.messages import ConversationResultData

from blackbox_emulator._template import parse, render
from blackbox_emulator.script import AgentScript, Turn

__all__ = ["Action", "AskTool", "Finish", "Say", "ScriptedAgent"]


@dataclass(frozen=True)
class Say:
    """Send a ``text`` chunk: the agent's words, or the echo of the user's."""

    text: str
    source: Literal["assistant", "user"] = "assistant"


@dataclass(frozen=True)
class AskTool:
    """Send a ``websocketToolRequest``."""

    id: str
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finish:
    """End the conversation: send ``conversationResult``, then close the socket."""

    result: ConversationResultData


Action = Say | AskTool | Finish


def _new_id() -> str:
    return uuid.uuid4().hex


def _fill(value: Any, variables: Mapping[str, Any]) -> Any:
    """A tool's arguments with every string rendered as a template."""
    if isinstance(value, str):
        return render(parse(value), variables)
    if isinstance(value, Mapping):
        return {key: _fill(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, variables) for item in value]
    return value


class ScriptedAgent:
    """One conversation's agent, following a script.

    Args:
        script: what to say.
        additional_data: the ``initialize`` request's ``additionalData``, the
            templates' ``{data...}``.
        new_id: makes tool request ids (fresh ones; the default is a uuid4 hex).
    """

    def __init__(
        self,
        script: AgentScript,
        *,
        additional_data: Mapping[str, Any] | None = None,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._script = script
        self._data = dict(additional_data or {})
        self._new_id = new_id
        self._turns = 0
        #: Tool requests awaiting their result: id to (rule, template variables).
        self._pending: dict[str, tuple[Turn, dict[str, Any]]] = {}
        self._finished = False

    @property
    def turns(self) -> int:
        """How many user messages the agent has answered (or started to)."""
        return self._turns

    @property
    def finished(self) -> bool:
        """Whether the agent has ended the conversation (it then ignores input)."""
        return self._finished

    @property
    def result(self) -> ConversationResultData:
        """The ``conversationResult`` of this conversation."""
        return self._script.result

    def greet(self) -> list[Action]:
        """The conversation is open: the greeting."""
        return self._say(self._script.greeting, {"data": self._data})

    def hear(self, text: str) -> list[Action]:
        """The user said ``text``: the echo, then the reply or a tool request."""
        if self._finished:
            return []
        self._turns += 1
        actions: list[Action] = [Say(text, "user")] if self._script.echo_user else []
        for rule in self._script.turns:
            match = rule.search(text)
            if match is not None:
                variables = {"text": text, "data": self._data, **match.groupdict()}
                if rule.tool is not None:
                    tool_id = self._new_id()
                    self._pending[tool_id] = (rule, variables)
                    args = _fill(rule.tool.args, variables)
                    return [*actions, AskTool(tool_id, rule.tool.name, args)]
                return [*actions, *self._say(rule.reply, variables), *self._maybe_end(rule)]
        variables = {"text": text, "data": self._data}
        return [*actions, *self._say(self._script.default_reply, variables), *self._maybe_end()]

    def tool_answered(self, tool_id: str, result: Any) -> list[Action]:
        """The client answered the tool request ``tool_id``: the rule's reply."""
        pending = self._pending.pop(tool_id, None)
        if pending is None or self._finished:
            return []
        rule, variables = pending
        actions = self._say(rule.reply, {**variables, "tool_result": result})
        return [*actions, *self._maybe_end(rule)]

    def _say(self, chunks: Iterable[str], variables: Mapping[str, Any]) -> list[Action]:
        rendered = (render(parse(chunk), variables) for chunk in chunks)
        # A chunk whose placeholders all rendered empty would be an empty frame.
        return [Say(text) for text in rendered if text]

    def _maybe_end(self, rule: Turn | None = None) -> list[Action]:
        """End after a rule that says so, or at ``max_turns`` once no tool is pending."""
        limit = self._script.max_turns
        at_limit = limit is not None and self._turns >= limit and not self._pending
        if rule is not None and rule.end:
            farewell: list[Action] = []
        elif at_limit:
            farewell = self._say(self._script.farewell, {"data": self._data})
        else:
            return []
        self._finished = True
        return [*farewell, Finish(self._script.result)]
