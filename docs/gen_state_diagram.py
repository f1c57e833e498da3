"""Generate docs/state-diagram.md from the transition table, ``blackbox_protocol._state.TABLES``.

The page is data, not prose: one Mermaid ``stateDiagram-v2`` per lifecycle
with an edge for every input that moves the conversation, a table of what each
state allows without moving, and the rules for everything else. Regenerate it
after changing the table; a test fails while the committed page is stale.

Usage::

    uv run python docs/gen_state_diagram.py           # rewrite docs/state-diagram.md
    uv run python docs/gen_state_diagram.py --check   # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from blackbox_protocol._codec import MAX_NESTING
from blackbox_protocol._state import (
    AWAITED,
    CLEAN_CLOSE,
    CROSSED,
    INPUT_BY_TYPE,
    SENDER,
    TABLES,
    ConnectionState,
    Input,
    Lifecycle,
)
from blackbox_protocol.connection import _LIFECYCLE, ClientConnection, ServerConnection

__all__ = ["OUTPUT", "main", "render"]

#: The generated page.
OUTPUT: Final = Path(__file__).resolve().parent / "state-diagram.md"

_Row = Mapping[Input, ConnectionState]
_Table = Mapping[ConnectionState, _Row]

_TITLES: Final = {Lifecycle.CHAT: "Chat", Lifecycle.VOICE: "Voice"}


def _code(text: str) -> str:
    return f"`{text}`"


def _reachable(table: _Table) -> list[ConnectionState]:
    """The states reachable from the first one, in the enum's order."""
    seen = {ConnectionState.AWAITING_INITIALIZE}
    frontier = [ConnectionState.AWAITING_INITIALIZE]
    while frontier:
        for target in table[frontier.pop()].values():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return [state for state in ConnectionState if state in seen]


def _mermaid(table: _Table, states: Sequence[ConnectionState]) -> list[str]:
    lines = ["```mermaid", "stateDiagram-v2"]
    lines += [f'    state "{state.value}" as {state.name}' for state in states]
    lines.append(f"    [*] --> {states[0].name}")
    for state in states:
        # One edge per target, labelled with every input that leads there.
        by_target: dict[ConnectionState, list[str]] = {}
        for received in Input:
            target = table[state].get(received)
            if target is not None and target is not state:
                by_target.setdefault(target, []).append(received.value)
        for target, inputs in by_target.items():
            lines.append(f"    {state.name} --> {target.name}: {', '.join(inputs)}")
    lines += [f"    {ConnectionState.CLOSED.name} --> [*]", "```"]
    return lines


def _deadlines() -> dict[ConnectionState, str]:
    """Which end has a deadline in which state, with its default length."""
    ends = {"client": ClientConnection(), "server": ServerConnection(now=0.0)}
    deadlines: dict[ConnectionState, str] = {}
    for state, awaited in AWAITED.items():
        found = [
            f"{end}, {end_connection._timeouts[state]:g} s by default"
            for end, end_connection in ends.items()
            if state in end_connection._timeouts
        ]
        deadlines[state] = f"for {_code(awaited)} ({'; '.join(found)})"
    return deadlines


def _staying(lifecycle: Lifecycle, states: Sequence[ConnectionState]) -> list[str]:
    lines = [
        "| state | allowed without a state change | dropped when they crossed | deadline "
        "| the socket closing |",
        "|---|---|---|---|---|",
    ]
    deadlines = _deadlines()
    table = TABLES[lifecycle]
    for state in states:
        row = table[state]
        inputs = [_code(received.value) for received in Input if row.get(received) is state]
        crossed = [
            _code(received.value) for received in Input if received in CROSSED[lifecycle][state]
        ]
        if state is ConnectionState.CLOSED:
            closing = ""
        elif state is ConnectionState.FAILED:
            closing = "expected"
        elif state in CLEAN_CLOSE:
            closing = "a normal end"
        else:
            closing = "fails: `DisconnectedError`"
        lines.append(
            f"| {state.value} | {', '.join(inputs) or '(none)'} | {', '.join(crossed)}"
            f" | {deadlines.get(state, '')} | {closing} |"
        )
    return lines


def _lifecycle(lifecycle: Lifecycle) -> list[str]:
    table = TABLES[lifecycle]
    states = _reachable(table)
    call_types = [_code(call_type) for call_type, used in _LIFECYCLE.items() if used is lifecycle]
    lines = [
        f"## {_TITLES[lifecycle]}",
        "",
        f"Call types: {', '.join(call_types)}.",
        "",
        *_mermaid(table, states),
        "",
        *_staying(lifecycle, states),
    ]
    unreachable = [state for state in ConnectionState if state not in states]
    if unreachable:
        names = " and ".join(_code(state.value) for state in unreachable)
        lines += ["", f"{names} cannot be reached in this lifecycle."]
    return lines


def _inputs() -> list[str]:
    types_of: dict[Input, list[str]] = {}
    for wire_type, received in INPUT_BY_TYPE.items():
        types_of.setdefault(received, []).append(wire_type)
    types_of[Input.SESSION_READY] = ["event"]
    types_of[Input.REPEATED_OFFER] = types_of[Input.NEW_OFFER] = ["sdpInvite"]
    described = {
        Input.OFFER: "(the first of the conversation)",
        Input.REPEATED_OFFER: "(the first one's SDP again)",
        Input.NEW_OFFER: "(another SDP than the first one's)",
        Input.SESSION_READY: "named `connection`",
        Input.EVENT: "with any other name",
        Input.UNKNOWN: "a `type` this SDK does not know",
        Input.TIMEOUT: "the state's deadline passed (`handle_timer`)",
        Input.CLOSE: "the socket closed (`receive_close`)",
    }
    lines = ["| input | wire `type` | sent by |", "|---|---|---|"]
    for received in Input:
        wire = ", ".join(_code(name) for name in types_of.get(received, []))
        note = described.get(received, "")
        what = f"{wire} {note}".strip() if wire else note
        sender = SENDER.get(received)
        if sender is not None:
            by = sender.value
        else:
            by = "either end" if received is Input.UNKNOWN else "(not a message)"
        lines.append(f"| {_code(received.value)} | {what} | {by} |")
    return lines


def render() -> str:
    """The page, as Markdown."""
    clean = ", ".join(_code(state.value) for state in ConnectionState if state in CLEAN_CLOSE)
    clean = " and".join(clean.rsplit(",", 1))
    lines = [
        "<!-- Generated by docs/gen_state_diagram.py from blackbox_protocol._state.TABLES."
        " Do not edit: run `uv run python docs/gen_state_diagram.py`. -->",
        "",
        "# The conversation's states",
        "",
        "One socket carries one conversation, and both ends track the same state: a",
        "message moves it the same way whether this end sent it or received it. The",
        "client's `ClientConnection` and the server's `ServerConnection` walk the same",
        "table (`blackbox_protocol._state.TABLES`), one per lifecycle; this page is",
        "generated from it. See [the protocol core](protocol-core.md) for the API.",
        "",
        "## Inputs",
        "",
        *_inputs(),
        "",
    ]
    for lifecycle in Lifecycle:
        lines += [*_lifecycle(lifecycle), ""]
    lines += [
        "## Messages that cross",
        "",
        "Each end may send while the other's message is on its way, and then",
        "receives that message in the state its own message led to. The tables are",
        "built so that every such pair leaves both ends in the same state once the",
        "link drains (`tests/blackbox_protocol/test_crossing.py` checks every pair).",
        "Where the receiver's new state cannot take the crossed message, the",
        "*dropped when they crossed* column lists it: it arrives late and is no news",
        "(the client's last words after the server's result; an offer that crossed",
        "the client's `terminate`), so it is dropped with no event and no violation.",
        "A renegotiation that crosses `terminate` fails the call on both ends, as it",
        "would have without the `terminate`.",
        "",
        "## Everything else is an error",
        "",
        "An input that a state does not list is an error, and it never changes the",
        "state. When the app sends it (a command such as `send_text` or `answer`),",
        "the command raises `LocalProtocolError` and nothing is sent. When the peer",
        "sends it, `receive_frame` emits a `ProtocolViolation` event (the reason and",
        "the start of the frame) and the conversation goes on. A message that only",
        "the receiving end may send (a client receiving `terminate`) is a violation",
        "in every state, and so are a frame that does not decode (arrays and objects",
        f"nested deeper than {MAX_NESTING} levels included), a binary frame, a frame over",
        "its size limit, an answer over the SDP size limit, an offer repeated (the",
        "same SDP again: it is answered once), and a tool request id seen before. A",
        "tool request that does not decode but whose `content.id` can be read is",
        "answered at once with an error result, since the server waits for it.",
        "",
        "Some inputs fail the conversation (`failed`, with a `ConversationFailed`",
        "event): an `error` frame (the service's error, typed), a new offer after the",
        "first (the protocol has no renegotiation: `RemoteProtocolError`), an offer",
        "over the SDP size limit (it cannot be answered, and nothing else can come:",
        "`RemoteProtocolError`), a passed deadline (`ProtocolTimeout`), and the",
        "socket closing where that is not a normal end",
        f"(`DisconnectedError`; it is one in {clean}).",
        "In `failed` received frames are ignored: close the socket. In `closed`,",
        "`receive_frame`, `receive_close` and every command raise `LocalProtocolError`.",
        "",
        "The server end also applies the service's own rules: a second `initialize`,",
        "no `initialize` before its deadline and an oversized frame each make",
        "`ServerConnection` send the documented `error` frame",
        "(`Multiple init messages received`, `Init message not received`,",
        "`Too large message`), which fails the conversation on both ends.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite the page, or with ``--check`` report whether it is stale (exit 1)."""
    parser = argparse.ArgumentParser(description="Generate docs/state-diagram.md.")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed page is stale"
    )
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != page:
            print(f"{OUTPUT.name} is stale: run python docs/gen_state_diagram.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
