"""A mutation fuzzer of received frames: the codec, and both ends in every reachable state.

Each frame is a mutation of a valid frame (every message type, the golden
transcripts): characters flipped, cut, spliced or repeated, JSON values
swapped for odd ones, types retagged, nesting made deep. It goes through
``decode``, which must give a message or ``InvalidMessage``, and then through
a client and a server brought (by ``_links``) into one of the reachable
states in turn, whose ``receive_frame`` must raise nothing and leave the
connection sound: a reachable state, and only valid frames to send.

``nox -s fuzz`` runs ``python -m tests.blackbox_protocol._fuzz`` with 100k+
frames and prints the counts; the test suite runs a short round of it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blackbox_protocol import InvalidMessage, decode, encode
from blackbox_protocol._state import ConnectionState, Lifecycle
from blackbox_protocol.connection import ClientConnection, ServerConnection
from blackbox_protocol.messages import (
    MESSAGE_CLASSES,
    ConversationResult,
    ConversationResultData,
    Error,
    ErrorData,
    Event,
    EventData,
    IncomingChatMessage,
    Initialize,
    InitializeRequest,
    SdpAnswer,
    SdpAnswerData,
    SdpInvite,
    SdpInviteData,
    Terminate,
    Text,
    TextContent,
    ToolCall,
    ToolCallResult,
    ToolRequestContent,
    ToolResponseContent,
    WebsocketToolRequest,
    WebsocketToolResponse,
)

from tests.blackbox_protocol._links import (
    ANSWER,
    HISTORIES,
    NEW_OFFER,
    NOW,
    OFFER,
    REACHABLE,
    History,
    setup,
)

__all__ = ["Report", "fuzz", "main"]

_TRANSCRIPTS = Path(__file__).with_name("transcripts")
_LIFECYCLE = {"chat": Lifecycle.CHAT, "onPhone": Lifecycle.CHAT, "webCall": Lifecycle.VOICE}


def _seeds() -> list[str]:
    """Valid frames of every type, both directions, and every golden transcript's."""
    messages = [
        Initialize(request=InitializeRequest(call_type="webCall", additional_data={"a": 1})),
        Initialize(request=InitializeRequest(call_type="chat")),
        IncomingChatMessage(content="hello"),
        SdpAnswer(data=SdpAnswerData(sdp_answer=ANSWER)),
        WebsocketToolResponse(content=ToolResponseContent(id="t-1", result={"ok": [1, 2]})),
        Terminate(),
        Event(name="connection", data=EventData(job_id="j-1")),
        Event(name="opened", data=EventData(extra={"n": 1})),
        Text(content=TextContent(source="assistant", text="Hi", type="potential")),
        SdpInvite(data=SdpInviteData(invite=OFFER)),
        SdpInvite(data=SdpInviteData(sdp_offer=NEW_OFFER)),
        WebsocketToolRequest(
            content=ToolRequestContent(id="t-1", tool_name="lookup", args={"city": "Paris"})
        ),
        ToolCall(extra={"toolName": "lookup"}),
        ToolCallResult(extra={"result": None}),
        ConversationResult(result=ConversationResultData(status="Completed")),
        Error(data=ErrorData(message="Invalid token")),
    ]
    frames = [encode(message, now=NOW) for message in messages]
    for path in sorted(_TRANSCRIPTS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            frame = json.loads(line).get("frame")
            if frame is not None:
                frames.append(json.dumps(frame))
    return frames


_ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**64,
    1e308,
    "",
    "\ud800",
    "x" * 300,
    [],
    {},
    [None, [{}]],
    {"type": "text"},
]
_ODD_TEXT = ["\x00", "\ud83d", "\\", '"', "{", "}", "[", "]", ",", ":", "1e400", "NaN", "\u2028"]
#: Every wire type, and one this SDK does not know.
_TYPES = [*sorted(MESSAGE_CLASSES), "brandNewType"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        items: Sequence[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


def _deep(rng: random.Random) -> str:
    depth = rng.choice([50, 127, 128, 129, 990, 5000])
    opening = rng.choice(["[", '{"a":'])
    closing = "]" if opening == "[" else "}"
    return opening * depth + "1" + closing * depth


class _Mutator:
    def __init__(self, rng: random.Random, seeds: list[str]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.kinds: Counter[str] = Counter()

    def frame(self) -> str | bytes:
        rng = self.rng
        frame: str | bytes = rng.choice(self.seeds)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            assert isinstance(frame, str)
            kind = rng.choice(_MUTATIONS)
            self.kinds[kind.__name__] += 1
            frame = kind(self, frame)
            if isinstance(frame, bytes):
                break
        return frame

    def text(self, frame: str) -> str:
        """Characters flipped, inserted, deleted or repeated."""
        rng = self.rng
        chars = list(frame)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(chars) + 1)
            choice = rng.random()
            if choice < 0.3 and chars:
                chars[min(at, len(chars) - 1)] = rng.choice(_ODD_TEXT)
            elif choice < 0.6:
                chars.insert(at, rng.choice(_ODD_TEXT))
            elif choice < 0.8:
                del chars[at : at + rng.randint(1, 8)]
            else:
                chars[at:at] = chars[at : at + rng.randint(1, 16)]
        return "".join(chars)

    def cut(self, frame: str) -> str:
        return frame[: self.rng.randrange(len(frame) + 1)]

    def splice(self, frame: str) -> str:
        other = self.rng.choice(self.seeds)
        return frame[: self.rng.randrange(len(frame) + 1)] + other[self.rng.randrange(len(other)) :]

    def value(self, frame: str) -> str:
        """A JSON value replaced, deleted, or made deep; or the type retagged."""
        rng = self.rng
        try:
            parsed = json.loads(frame)
        except (ValueError, RecursionError):
            return self.text(frame)
        paths = list(_paths(parsed))
        if not isinstance(parsed, dict) or not paths or rng.random() < 0.15:
            if isinstance(parsed, dict):
                parsed["type"] = rng.choice(_TYPES)
            return json.dumps(parsed)
        path = rng.choice(paths)
        parent = parsed
        for key in path[:-1]:
            parent = parent[key]
        choice = rng.random()
        if choice < 0.3 and isinstance(parent, dict):
            del parent[path[-1]]
        elif choice < 0.45:
            text = json.dumps(parsed)
            marker = json.dumps(parent[path[-1]])
            return text.replace(marker, _deep(rng), 1) if marker in text else text
        else:
            parent[path[-1]] = rng.choice(_ODD_VALUES)
        return json.dumps(parsed, ensure_ascii=rng.random() < 0.5)

    def binary(self, frame: str) -> bytes:
        return frame.encode("utf-8", "surrogatepass")[: self.rng.randrange(len(frame) + 1)]


_MUTATIONS: list[Callable[[_Mutator, str], str | bytes]] = [
    _Mutator.text,
    _Mutator.text,
    _Mutator.cut,
    _Mutator.splice,
    _Mutator.value,
    _Mutator.value,
    _Mutator.value,
    _Mutator.binary,
]


@dataclass
class Report:
    """What a fuzz run saw."""

    frames: int = 0
    seconds: float = 0.0
    decoded: Counter[str] = field(default_factory=Counter)
    invalid: int = 0
    fed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    moved: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        per_state = sorted(self.fed.items())
        return [
            f"{self.frames} fuzzed frames in {self.seconds:.1f} s "
            f"({self.frames / max(self.seconds, 1e-9):,.0f}/s)",
            f"decode: {sum(self.decoded.values())} messages, {self.invalid} InvalidMessage",
            "  decoded as: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.decoded.items())),
            f"receive_frame: {sum(self.fed.values())} calls in {len(self.fed)} (end, state)s",
            *(f"  {lc} {role} {state}: {n}" for (lc, role, state), n in per_state),
            f"state changes caused: {sum(self.moved.values())}",
            "events: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.events.items())),
            "mutations: " + ", ".join(f"{kind} {n}" for kind, n in sorted(self.mutations.items())),
            f"unexpected exceptions or broken invariants: {len(self.failures)}",
            *(f"  {failure}" for failure in self.failures[:10]),
        ]


_Target = tuple[History, str]


#: Before ``initialize`` a server does not know its lifecycle yet.
_REACHABLE_ANY = REACHABLE[Lifecycle.CHAT] | REACHABLE[Lifecycle.VOICE]


def _check(
    end: ClientConnection | ServerConnection, reachable: frozenset[ConnectionState], report: Report
) -> list[str]:
    """What is wrong with ``end`` after a frame, if anything; its events are tallied."""
    problems = []
    if end.state not in reachable:
        problems.append(f"unreachable state {end.state.value}")
    for event in end.events_received():
        report.events[type(event).__name__] += 1
    for sent in end.frames_to_send():
        try:
            decode(sent)
        except InvalidMessage as exc:
            problems.append(f"sent an invalid frame ({exc}): {sent[:120]!r}")
    return problems


def fuzz(frames: int, *, seed: int, per_setup: int = 50) -> Report:
    """Fuzz ``frames`` frames with ``random.Random(seed)``; see the module's docstring.

    A connection keeps receiving frames until one moves its state or
    ``per_setup`` have gone; then the next (end, state) in turn is set up.
    """
    rng = random.Random(seed)
    mutator = _Mutator(rng, _seeds())
    report = Report()
    targets: list[_Target] = [
        (history, role) for history in HISTORIES for role in ("client", "server")
    ]
    turn = 0
    started = time.perf_counter()
    while report.frames < frames:
        history, role = targets[turn % len(targets)]
        turn += 1
        link = setup(history)
        end: ClientConnection | ServerConnection = link.client if role == "client" else link.server
        lifecycle = _LIFECYCLE[history[0].value]
        fresh = not HISTORIES[history]
        reachable = _REACHABLE_ANY if fresh else REACHABLE[lifecycle]
        for _ in range(per_setup):
            if report.frames >= frames:
                break
            frame = mutator.frame()
            report.frames += 1
            if isinstance(frame, str):
                try:
                    report.decoded[type(decode(frame)).__name__] += 1
                except InvalidMessage:
                    report.invalid += 1
                except Exception as exc:
                    report.failures.append(f"decode raised {exc!r} on {frame[:120]!r}")
            before = end.state
            key = (lifecycle.value, role, before.value)
            report.fed[key] += 1
            try:
                end.receive_frame(frame, now=NOW)
            except Exception as exc:
                report.failures.append(f"{key} receive_frame raised {exc!r} on {frame[:120]!r}")
                break
            report.failures += [f"{key}: {p}" for p in _check(end, reachable, report)]
            if end.state is not before:
                report.moved[key] += 1
                break
    report.seconds = time.perf_counter() - started
    report.mutations = mutator.kinds
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120_000, help="frames to fuzz")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed} (rerun with --seed {seed})")
    report = fuzz(args.frames, seed=seed)
    # Fuzzed message types may hold lone surrogates, which UTF-8 cannot write.
    print("\n".join(report.lines()).encode("utf-8", "backslashreplace").decode())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
