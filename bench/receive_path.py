"""Benchmark: the receive path of the sans-IO core, against plain ``json.loads``.

A voice call's frames (one ~3 KB SIP-style SDP offer among ~200 small frames:
events, assistant text chunks, user echoes, a tool request and its log, the
result) are measured three ways in the same run:

- **receive path**: ``ClientConnection.receive_frame`` (which decodes) and
  ``events_received()`` per frame, as a driver does, on a fresh connection per
  conversation that walks the real voice path. The driver's commands (building
  the connection, ``initialize``, ``answer``, ``reply_to_tool``) are timed apart
  and kept out of the figure.
- **decode**: ``blackbox_protocol.decode`` alone.
- **json.loads**: the floor any Python receive path pays.

Each path is timed with ``time.perf_counter`` over many repeats, the three
taking turns within every repeat, with the garbage collector paused (as
``timeit`` does). The table gives the best repeat and the median one; the goal
(the receive path at most 3x ``json.loads``) is judged on the median of each
repeat's ratio, which holds steady when the machine's speed swings.

Run ``python bench/receive_path.py`` (``nox -s bench``); ``--quick`` for a
short run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from attrs import frozen
from blackbox_protocol import (
    ClientConnection,
    ConnectionState,
    OfferReceived,
    ProtocolViolation,
    ToolRequested,
    decode,
)

__all__ = [
    "GOAL_RATIO",
    "Conversation",
    "Figure",
    "build_conversation",
    "check",
    "main",
    "measure",
    "ratio_of_medians",
    "run",
    "sdp_offer",
]

#: The ratio the receive path aims to stay under, against ``json.loads``.
GOAL_RATIO: Final = 3.0
#: POSIX seconds of the first frame (2026-06-10T09:00:00Z).
_START: Final = 1_781_082_000.0
#: What the driver sends back; its cost is not part of the receive path.
_ANSWER_SDP: Final = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVP 0 8 101\r\n"
    "c=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\na=setup:active\r\na=rtcp-mux\r\n"
)


def sdp_offer(target_size: int = 3000) -> str:
    """A SIP-style (pjmedia) G.711 offer, as the live service sends, padded with
    candidates to about ``target_size`` characters."""
    head = [
        "v=0",
        "o=- 3912345678 3912345678 IN IP4 203.0.113.10",
        "s=pjmedia",
        "b=AS:84",
        "t=0 0",
        "a=X-nat:0",
        "m=audio 4000 RTP/SAVP 0 8 101",
        "c=IN IP4 203.0.113.10",
        "b=TIAS:64000",
        "a=rtcp:4001 IN IP4 203.0.113.10",
        "a=sendrecv",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=maxptime:150",
        "a=ssrc:1466021335 cname:5c3a0f6b1e2d4c7a",
        "a=ssrc:1466021335 msid:pjmedia-stream audio-1",
        "a=ice-ufrag:2b7a1c3d",
        "a=ice-pwd:5e1f0a9b2c3d4e5f60718293",
        "a=ice-options:trickle",
    ]
    tail = [
        "a=rtcp-mux",
        "a=setup:actpass",
        "a=fingerprint:SHA-256 3A:91:0C:5E:7B:22:1F:9D:44:6A:B0:C3:18:E7:52:0D:9F:6B:21:8C:3E:"
        "77:A4:05:D1:E9:2B:60:4F:13:C8:7A",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj",
    ]
    candidates: list[str] = []
    kinds = (
        ("H", "10.0.0.{n}", "typ host"),
        ("S", "203.0.113.{n}", "typ srflx raddr 10.0.0.{n} rport 4000"),
        ("R", "198.51.100.{n}", "typ relay raddr 203.0.113.{n} rport 4000"),
    )
    number = 0
    while len("\r\n".join(head + candidates + tail)) < target_size:
        prefix, address, kind = kinds[number % len(kinds)]
        n = 5 + number // len(kinds)
        for component in (1, 2):
            priority = 2130706431 - 1024 * number - component
            candidates.append(
                f"a=candidate:{prefix}c0a8{n:04x} {component} UDP {priority} "
                f"{address.format(n=n)} {4000 + component - 1} {kind.format(n=n)}"
            )
        number += 1
    return "\r\n".join(head + candidates + tail) + "\r\n"


_ASSISTANT_WORDS: Final = (
    "Sure, ",
    "I can ",
    "help you ",
    "book a ",
    "haircut. ",
    "What day ",
    "works best ",
    "for you? ",
    "We have ",
    "openings on ",
    "Tuesday at ",
    "ten, ",
    "and Thursday ",
    "afternoon.",
)
_USER_LINES: Final = (
    "hi I'd like to book a haircut",
    "Tuesday would be great",
    "ten in the morning please",
    "my name is Igor",
    "yes that's right",
    "can I also get a beard trim",
    "how much will it cost",
    "ok sounds good",
    "do you take cards",
    "great",
    "is there parking nearby",
    "thanks",
    "bye",
)


@frozen
class Conversation:
    """One voice call's received frames, in order, and where the offer sits."""

    frames: tuple[str, ...]
    offer_index: int

    @property
    def small_frames(self) -> tuple[str, ...]:
        """Every frame after the offer (all small): what a running call receives."""
        return self.frames[self.offer_index + 1 :]

    @property
    def offer(self) -> str:
        """The SDP offer's frame."""
        return self.frames[self.offer_index]


def build_conversation(*, turns: int = 13, offer_size: int = 3000) -> Conversation:
    """A voice call as the live service sends it: ``3 + 15 * turns + 3`` frames.

    ``event connection``, the SIP-style ``sdpInvite``, ``event opened``; then per
    turn the user's echo and the agent's reply in chunks; in the middle turn a
    ``websocketToolRequest`` and its ``toolCallResult`` log; last
    ``conversationResult``.
    """
    moments = iter(range(10**6))

    def frame(kind: str, **payload: Any) -> str:
        # Frames about 0.37 s apart, stamped like the live service (milliseconds, Z).
        millis = int(_START * 1000) + next(moments) * 370
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
        timestamp = f"{stamp}.{millis % 1000:03d}Z"
        return json.dumps({"type": kind, "timestamp": timestamp, "channelId": None, **payload})

    def text(source: str, words: str) -> str:
        return frame("text", content={"source": source, "text": words})

    frames = [
        frame("event", name="connection", data={"jobId": "a81d5f0c2b1e"}),
        frame("sdpInvite", data={"invite": sdp_offer(offer_size)}),
        frame("event", name="opened", data={}),
    ]
    for turn in range(turns):
        frames.append(text("user", _USER_LINES[turn % len(_USER_LINES)]))
        if turn == turns // 2:
            args = {"date": "2026-06-16", "time": "10:00", "service": "haircut"}
            request = {"id": "3f1c9a", "toolName": "book_slot", "args": args}
            frames.append(frame("websocketToolRequest", content=request))
            frames.append(frame("toolCallResult", content={"id": "3f1c9a"}))
        frames.extend(text("assistant", word) for word in _ASSISTANT_WORDS)
    frames.append(frame("conversationResult", result={"status": "Completed", "errorMessage": None}))
    return Conversation(frames=tuple(frames), offer_index=1)


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _new_call(now: float) -> ClientConnection:
    connection = ClientConnection()
    connection.initialize("webCall", additional_data={"userId": "user-123"}, now=now)
    return connection


def _drive(connection: ClientConnection, frames: Sequence[str], now: float) -> tuple[float, int]:
    """Feed ``frames`` as a driver does; return the seconds spent in commands and the
    number of events. The caller's clock includes the commands; it subtracts them."""
    clock = time.perf_counter
    in_commands = 0.0
    events = 0
    for frame in frames:
        connection.receive_frame(frame, now=now)
        for event in connection.events_received():
            events += 1
            if isinstance(event, OfferReceived):
                start = clock()
                connection.answer(_ANSWER_SDP, now=now)
                in_commands += clock() - start
            elif isinstance(event, ToolRequested):
                start = clock()
                connection.reply_to_tool(event.id, {"success": True}, now=now)
                in_commands += clock() - start
    return in_commands, events


def check(conversation: Conversation) -> int:
    """Walk the conversation once and prove it is the realistic path; return the events.

    Raises:
        AssertionError: a frame was refused, or the call did not end normally.
    """
    connection = _new_call(_START)
    events = 0
    for frame in conversation.frames:
        connection.receive_frame(frame, now=_START)
        received = connection.events_received()
        violations = [event for event in received if isinstance(event, ProtocolViolation)]
        assert not violations, violations
        events += len(received)
        for event in received:
            if isinstance(event, OfferReceived):
                connection.answer(_ANSWER_SDP, now=_START)
            elif isinstance(event, ToolRequested):
                connection.reply_to_tool(event.id, {"success": True}, now=_START)
    assert connection.state is ConnectionState.ENDED, connection.state
    assert events == len(conversation.frames), (events, len(conversation.frames))
    return events


@frozen
class Figure:
    """Seconds per frame over the repeats of one measurement."""

    name: str
    frames: int
    seconds_per_frame: tuple[float, ...]

    @property
    def best(self) -> float:
        """The fastest repeat's seconds per frame."""
        return min(self.seconds_per_frame)

    @property
    def median(self) -> float:
        """The median repeat's seconds per frame."""
        return statistics.median(self.seconds_per_frame)


#: A measurement: a name, the frames one round measures, and the round, which
#: returns the seconds it measured.
Round = tuple[str, int, Callable[[], float]]


def measure(rounds: Sequence[Round], repeats: int) -> list[Figure]:
    """Run each round ``repeats`` times with the garbage collector paused.

    The rounds take turns within each repeat, so that a change in the machine's
    speed during the run touches every figure alike.
    """
    for _, _, one_round in rounds:
        one_round()  # warm up: caches, the converter's hooks
    samples: list[list[float]] = [[] for _ in rounds]
    for _ in range(repeats):
        for (_, frames, one_round), seconds in zip(rounds, samples, strict=True):
            with _gc_paused():
                seconds.append(one_round() / frames)
    return [
        Figure(name, frames, tuple(seconds))
        for (name, frames, _), seconds in zip(rounds, samples, strict=True)
    ]


def _receive_full(conversation: Conversation, calls: int) -> Callable[[], float]:
    def one_round() -> float:
        spent = 0.0
        for _ in range(calls):
            connection = _new_call(_START)
            start = time.perf_counter()
            in_commands, _ = _drive(connection, conversation.frames, _START)
            spent += time.perf_counter() - start - in_commands
        return spent

    return one_round


def _receive_offer(conversation: Conversation, calls: int) -> Callable[[], float]:
    first = conversation.frames[: conversation.offer_index]
    offer = conversation.offer

    def one_round() -> float:
        connections = []
        for _ in range(calls):
            connection = _new_call(_START)
            _drive(connection, first, _START)
            connections.append(connection)
        start = time.perf_counter()
        for connection in connections:
            connection.receive_frame(offer, now=_START)
            connection.events_received()
        return time.perf_counter() - start

    return one_round


def _receive_small(conversation: Conversation, calls: int) -> Callable[[], float]:
    up_to_offer = conversation.frames[: conversation.offer_index + 1]
    small = conversation.small_frames

    def one_round() -> float:
        spent = 0.0
        for _ in range(calls):
            connection = _new_call(_START)
            _drive(connection, up_to_offer, _START)
            start = time.perf_counter()
            in_commands, _ = _drive(connection, small, _START)
            spent += time.perf_counter() - start - in_commands
        return spent

    return one_round


def _each(parse: Callable[[str], Any], frames: Sequence[str], rounds: int) -> Callable[[], float]:
    def one_round() -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            for frame in frames:
                parse(frame)
        return time.perf_counter() - start

    return one_round


def _commands(conversation: Conversation, calls: int) -> Callable[[], float]:
    def one_round() -> float:
        spent = 0.0
        for _ in range(calls):
            start = time.perf_counter()
            connection = _new_call(_START)
            spent += time.perf_counter() - start
            in_commands, _ = _drive(connection, conversation.frames, _START)
            spent += in_commands
        return spent

    return one_round


def ratio_of_medians(figure: Figure, baseline: Figure) -> float:
    """The median over the repeats of ``figure / baseline``, each repeat's pair
    timed back to back: steadier than the ratio of the bests when the machine's
    speed swings during the run (the verdict uses it)."""
    pairs = zip(figure.seconds_per_frame, baseline.seconds_per_frame, strict=True)
    return statistics.median(mine / theirs for mine, theirs in pairs)


def _print_table(title: str, figures: Sequence[Figure], baseline: Figure) -> float:
    repeats = len(baseline.seconds_per_frame)
    print(f"\n{title}: {baseline.frames} frames a repeat, {repeats} repeats")
    print(
        f"  {'path':<24} {'frames/s':>9} {'µs/frame':>9} {'median µs':>10}"
        f" {'x json.loads':>13} {'(median x)':>11}"
    )
    for figure in figures:
        print(
            f"  {figure.name:<24} {1 / figure.best:>9,.0f} {figure.best * 1e6:>9.2f}"
            f" {figure.median * 1e6:>10.2f} {figure.best / baseline.best:>12.2f}x"
            f" {ratio_of_medians(figure, baseline):>10.2f}x"
        )
    return ratio_of_medians(figures[0], baseline)


def run(*, calls: int, repeats: int) -> dict[str, float]:
    """Measure everything and print the tables.

    Args:
        calls: conversations a repeat (the offer alone: 40 times as many).
        repeats: how many times each figure is measured.

    Returns:
        For each frame mix, the receive path's time over ``json.loads``'s
        (the median repeat's ratio).
    """
    conversation = build_conversation()
    check(conversation)
    frames, small, offer = conversation.frames, conversation.small_frames, conversation.offer
    mean_small = sum(len(frame.encode()) for frame in small) / len(small)
    print(
        f"A voice call: {len(frames)} frames: one {len(offer.encode())} B SDP offer frame,"
        f" {len(frames) - 1} small ones ({mean_small:.0f} B mean); {calls} calls a repeat."
    )
    print(
        f"Python {sys.version.split()[0]}. frames/s, µs/frame and x json.loads: the best of"
        f" {repeats} repeats; median µs and (median x), the median repeat's time and ratio"
        " (the three paths take turns in every repeat). GC paused while timing."
    )
    offer_calls = calls * 40
    mixes = (
        ("Whole call", frames, calls, _receive_full(conversation, calls)),
        ("SDP offer frame alone", (offer,), offer_calls, _receive_offer(conversation, offer_calls)),
        ("Small frames alone (after the offer)", small, calls, _receive_small(conversation, calls)),
    )
    ratios: dict[str, float] = {}
    for title, mix, rounds, receive_round in mixes:
        n = len(mix) * rounds
        figures = measure(
            [
                ("receive_frame + events", n, receive_round),
                ("decode", n, _each(decode, mix, rounds)),
                ("json.loads", n, _each(json.loads, mix, rounds)),
            ],
            repeats,
        )
        ratios[title] = _print_table(title, figures, figures[-1])

    [commands] = measure([("commands", calls, _commands(conversation, calls))], repeats)
    print(
        "\nNot in the figures above: the driver's commands (new connection, initialize,"
        f" answer, reply_to_tool) cost {commands.best * 1e6:.0f} µs a call"
        f" (median {commands.median * 1e6:.0f} µs)."
    )
    verdicts = "; ".join(
        f"{title.lower()} {value:.2f}x ({'ok' if value <= GOAL_RATIO else 'over'})"
        for title, value in ratios.items()
    )
    print(f"Goal: the receive path at most {GOAL_RATIO:g}x json.loads (median x): {verdicts}.")
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line; the exit status is 0 whatever the figures."""
    parser = argparse.ArgumentParser(description="The receive path of the sans-IO core.")
    parser.add_argument("--quick", action="store_true", help="a short run (about a second)")
    parser.add_argument("--calls", type=int, help="conversations a repeat (default 5, quick 2)")
    parser.add_argument("--repeats", type=int, help="repeats of each figure (default 41, quick 7)")
    args = parser.parse_args(argv)
    calls: int = args.calls or (2 if args.quick else 5)
    repeats: int = args.repeats or (7 if args.quick else 41)
    started = time.perf_counter()
    run(calls=calls, repeats=repeats)
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
