"""Tests of ``TurnTracker``: text chunks assembled into turns, and when each turn ends.

The examples pin each rule of ``blackbox_protocol.turns``; the properties say
that the chunking and timing of the same words never change the turns they
make, fed to a tracker or sent by a real ``ServerConnection`` to a real
``ClientConnection``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

from blackbox_protocol import (
    CallType,
    ClientConnection,
    ConnectionClosed,
    ConversationEnded,
    ConversationFailed,
    Latency,
    Reply,
    ReplyEnded,
    ReplyStarted,
    ServerConnection,
    TextReceived,
    Turn,
    TurnTracker,
    UserTurnEnded,
)
from blackbox_protocol.events import Event
from blackbox_protocol.turns import (
    ASSISTANT,
    DEFAULT_REPLY_PAUSE,
    MAX_TURN_CHARS,
    MAX_TURN_CHUNKS,
    MAX_TURNS,
    USER,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._hypothesis import examples
from tests.blackbox_protocol._turns import TURN_EVENTS

T = 100.0
PAUSE = 1.0
#: What reports the conversation's end.
FINAL_EVENTS = (ConversationEnded, ConversationFailed, ConnectionClosed)


def ended(turn: Turn) -> Event:
    """The event that ends ``turn``, the agent's or the user's."""
    if turn.source == ASSISTANT:
        return ReplyEnded(turn.text, turn)
    return UserTurnEnded(turn.text, turn)


# One source's chunks.


def test_chunks_of_one_source_form_one_turn() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.chunk(ASSISTANT, "Hel", partial=False, now=T) == [ReplyStarted()]
    assert tracker.chunk(ASSISTANT, "lo, ", partial=False, now=T + 0.5) == []
    assert tracker.chunk(ASSISTANT, "Ada", partial=False, now=T + 0.9) == []
    assert list(tracker.transcript) == []  # a list: mypy narrows a tuple compared with ()
    turn = Turn(ASSISTANT, "Hello, Ada", T, T + 0.9, ("Hel", "lo, ", "Ada"))
    assert tracker.current == turn
    assert tracker.next_deadline() == T + 0.9 + PAUSE
    assert tracker.end() == [ReplyEnded("Hello, Ada", turn)]
    assert tracker.transcript == (turn,)


def test_a_chunk_of_another_source_ends_the_turn_at_once() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(ASSISTANT, "Hi", partial=False, now=T)
    reply = Turn(ASSISTANT, "Hi", T, T, ("Hi",))
    # Well within the pause: the other source is what ends it.
    assert tracker.chunk(USER, "Hello", partial=False, now=T + 0.1) == [ReplyEnded("Hi", reply)]
    assert list(tracker.transcript) == [reply]
    user = Turn(USER, "Hello", T + 0.1, T + 0.1, ("Hello",))
    assert tracker.current == user
    assert tracker.chunk(ASSISTANT, "Yes?", partial=False, now=T + 0.1) == [
        UserTurnEnded("Hello", user),
        ReplyStarted(),
    ]
    assert tracker.transcript == (reply, user)


def test_the_pause_ends_the_turn_at_its_deadline_not_before() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.handle_timer(now=T) == []  # nothing open: nothing to end
    tracker.chunk(ASSISTANT, "Hi", partial=False, now=T)
    tracker.chunk(ASSISTANT, " there", partial=False, now=T + 0.5)
    deadline = T + 0.5 + PAUSE
    assert tracker.next_deadline() == deadline
    assert tracker.handle_timer(now=deadline - 0.001) == []
    assert tracker.current is not None
    assert tracker.transcript == ()
    reply = Turn(ASSISTANT, "Hi there", T, T + 0.5, ("Hi", " there"))
    assert tracker.handle_timer(now=deadline) == [ReplyEnded("Hi there", reply)]
    assert tracker.current is None
    assert tracker.next_deadline() is None
    assert tracker.transcript == (reply,)
    assert tracker.handle_timer(now=deadline + 10) == []


def test_a_chunk_after_the_deadline_starts_a_new_turn_without_the_timer() -> None:
    # The driver never called handle_timer: the chunk's own time says the pause passed.
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(ASSISTANT, "One.", partial=False, now=T)
    first = Turn(ASSISTANT, "One.", T, T, ("One.",))
    assert tracker.chunk(ASSISTANT, "Two.", partial=False, now=T + PAUSE) == [
        ReplyEnded("One.", first),
        ReplyStarted(),
    ]
    assert tracker.current == Turn(ASSISTANT, "Two.", T + PAUSE, T + PAUSE, ("Two.",))
    assert tracker.transcript == (first,)


def test_a_user_chunk_after_the_pause_starts_a_new_user_turn() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(USER, "one", partial=False, now=T)
    first = Turn(USER, "one", T, T, ("one",))
    assert tracker.chunk(USER, "two", partial=False, now=T + 5) == [UserTurnEnded("one", first)]
    assert tracker.end() == [UserTurnEnded("two", Turn(USER, "two", T + 5, T + 5, ("two",)))]


def test_end_ends_the_turn_at_once_and_then_does_nothing() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.end() == []
    tracker.chunk(USER, "Hello", partial=False, now=T)
    user = Turn(USER, "Hello", T, T, ("Hello",))
    assert tracker.end() == [UserTurnEnded("Hello", user)]
    assert tracker.end() == []
    assert tracker.current is None
    assert tracker.next_deadline() is None
    assert tracker.transcript == (user,)


def test_ended_at_is_the_last_chunk_s_time_not_when_the_end_was_known() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(ASSISTANT, "a", partial=False, now=T)
    tracker.chunk(ASSISTANT, "b", partial=False, now=T + 0.25)
    [event] = tracker.handle_timer(now=T + 60)
    assert isinstance(event, ReplyEnded)
    assert (event.turn.started_at, event.turn.ended_at) == (T, T + 0.25)


# Partial chunks.


def test_a_partial_chunk_starts_a_turn_and_keeps_it_open() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.chunk(ASSISTANT, "Hi, h", partial=True, now=T) == [ReplyStarted()]
    assert tracker.current == Turn(ASSISTANT, "Hi, h", T, T)
    assert tracker.chunk(ASSISTANT, "Hi, how", partial=True, now=T + 0.8) == []
    # The pause counts from the partial chunk.
    assert tracker.next_deadline() == T + 0.8 + PAUSE
    assert tracker.handle_timer(now=T + PAUSE) == []
    assert tracker.current == Turn(ASSISTANT, "Hi, how", T, T + 0.8)


def test_the_text_is_the_final_chunks_joined() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(ASSISTANT, "Hi, h", partial=True, now=T)
    tracker.chunk(ASSISTANT, "Hi, ", partial=False, now=T + 0.1)
    tracker.chunk(ASSISTANT, "how c", partial=True, now=T + 0.2)
    tracker.chunk(ASSISTANT, "how can I help?", partial=False, now=T + 0.3)
    tracker.chunk(ASSISTANT, "Bye n", partial=True, now=T + 0.4)  # never made final
    reply = Turn(ASSISTANT, "Hi, how can I help?", T, T + 0.4, ("Hi, ", "how can I help?"))
    assert tracker.end() == [ReplyEnded("Hi, how can I help?", reply)]


def test_a_turn_of_partial_chunks_only_takes_the_last_one() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(USER, "I w", partial=True, now=T)
    tracker.chunk(USER, "I want", partial=True, now=T + 0.5)
    user = Turn(USER, "I want", T, T + 0.5, ())
    assert tracker.end() == [UserTurnEnded("I want", user)]


# Sources.


def test_only_the_agent_s_turn_has_a_start_event() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.chunk(USER, "Hello", partial=False, now=T) == []
    assert tracker.chunk(ASSISTANT, "Hi", partial=False, now=T + 0.1)[-1] == ReplyStarted()


def test_another_source_has_no_events_but_is_in_the_transcript() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.chunk("system", "call ", partial=False, now=T) == []
    assert tracker.chunk("system", "recorded", partial=False, now=T + 0.1) == []
    assert tracker.current == Turn("system", "call recorded", T, T + 0.1, ("call ", "recorded"))
    # It ends like any turn, silently.
    assert tracker.chunk(ASSISTANT, "Hi", partial=False, now=T + 0.2) == [ReplyStarted()]
    assert tracker.chunk("system", "!", partial=False, now=T + 0.3) == [
        ReplyEnded("Hi", Turn(ASSISTANT, "Hi", T + 0.2, T + 0.2, ("Hi",)))
    ]
    assert tracker.handle_timer(now=T + 5) == []
    assert [(turn.source, turn.text) for turn in tracker.transcript] == [
        ("system", "call recorded"),
        (ASSISTANT, "Hi"),
        ("system", "!"),
    ]


# Bounds.


def test_a_turn_keeps_at_most_max_turn_chunks() -> None:
    tracker = TurnTracker(pause=PAUSE)
    for index in range(MAX_TURN_CHUNKS):
        tracker.chunk(ASSISTANT, "x", partial=False, now=T + index * 1e-4)
    current = tracker.current
    assert current is not None
    assert (len(current.chunks), current.truncated) == (MAX_TURN_CHUNKS, False)
    last = T + MAX_TURN_CHUNKS * 1e-4
    tracker.chunk(ASSISTANT, "y", partial=False, now=last)
    [event] = tracker.end()
    assert isinstance(event, ReplyEnded)
    assert event.turn.truncated
    assert event.text == "x" * MAX_TURN_CHUNKS
    assert event.turn.chunks == ("x",) * MAX_TURN_CHUNKS
    # The chunk not kept still counts as the turn's activity.
    assert event.turn.ended_at == last


def test_a_turn_keeps_at_most_max_turn_chars() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(ASSISTANT, "x" * (MAX_TURN_CHARS - 1), partial=False, now=T)
    tracker.chunk(ASSISTANT, "y", partial=False, now=T + 0.1)
    current = tracker.current
    assert current is not None
    assert (len(current.text), current.truncated) == (MAX_TURN_CHARS, False)  # at the limit
    tracker.chunk(ASSISTANT, "z", partial=False, now=T + 0.2)
    [event] = tracker.end()
    assert isinstance(event, ReplyEnded)
    assert event.turn.truncated
    assert event.text == "x" * (MAX_TURN_CHARS - 1) + "y"
    assert event.turn.ended_at == T + 0.2


def test_a_truncated_turn_keeps_its_start_only() -> None:
    # A chunk that would pass the limit is not kept; neither is a smaller one
    # after it that would fit: the text would have a hole in it.
    tracker = TurnTracker(pause=PAUSE)
    tracker.chunk(ASSISTANT, "x" * (MAX_TURN_CHARS - 2), partial=False, now=T)
    tracker.chunk(ASSISTANT, "abc", partial=False, now=T + 0.1)
    tracker.chunk(ASSISTANT, "d", partial=False, now=T + 0.2)
    [event] = tracker.end()
    assert isinstance(event, ReplyEnded)
    assert event.turn.truncated
    assert event.text == "x" * (MAX_TURN_CHARS - 2)
    assert event.turn.chunks == ("x" * (MAX_TURN_CHARS - 2),)


def test_the_transcript_keeps_the_latest_max_turns() -> None:
    tracker = TurnTracker(pause=PAUSE)
    extra = 5
    for index in range(MAX_TURNS + extra):
        tracker.chunk(USER, str(index), partial=False, now=T + index)
        tracker.end()
    transcript = tracker.transcript
    assert len(transcript) == MAX_TURNS
    assert [turn.text for turn in transcript] == [str(i) for i in range(extra, MAX_TURNS + extra)]


# The `pause` and `current` properties.


def test_pause_is_the_one_given_or_the_default() -> None:
    assert TurnTracker().pause == DEFAULT_REPLY_PAUSE
    assert TurnTracker(pause=2.5).pause == 2.5
    tracker = TurnTracker(pause=2.5)
    tracker.chunk(USER, "a", partial=False, now=T)
    assert tracker.next_deadline() == T + 2.5


def test_current_is_the_open_turn_as_it_stands() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.current is None
    tracker.chunk(ASSISTANT, "Hel", partial=False, now=T)
    before = tracker.current
    tracker.chunk(ASSISTANT, "lo", partial=False, now=T + 0.5)
    # A snapshot: it does not change as the turn goes on.
    assert before == Turn(ASSISTANT, "Hel", T, T, ("Hel",))
    assert tracker.current == Turn(ASSISTANT, "Hello", T, T + 0.5, ("Hel", "lo"))
    assert tracker.transcript == ()
    tracker.end()
    assert tracker.current is None


def test_activity_keeps_a_turn_open_without_text() -> None:
    tracker = TurnTracker(pause=PAUSE)
    assert tracker.speaker is None
    assert tracker.activity(ASSISTANT, now=T) == [ReplyStarted()]
    assert tracker.speaker == ASSISTANT
    assert tracker.activity(ASSISTANT, now=T + 0.5) == []
    assert tracker.handle_timer(now=T + 0.5 + PAUSE - TICK) == []
    (ended,) = tracker.handle_timer(now=T + 0.5 + PAUSE)
    assert ended == ReplyEnded("", Turn(ASSISTANT, "", T, T + 0.5))
    assert tracker.speaker is None


def test_activity_and_text_of_one_source_are_one_turn() -> None:
    tracker = TurnTracker(pause=PAUSE)
    tracker.activity(USER, now=T)
    tracker.chunk(USER, "hi", partial=False, now=T + 0.25)
    (ended,) = tracker.end()
    assert ended == UserTurnEnded("hi", Turn(USER, "hi", T, T + 0.25, ("hi",)))


# The same words, chunked and timed any way, make the same turns.

#: Times are multiples of 1/8 s: sums of them are exact, so a gap drawn
#: below the pause is below it for the tracker too.
TICK = 0.125
START = 1_000.0


class Chunk(NamedTuple):
    at: float
    text: str
    partial: bool


class Said(NamedTuple):
    """One generated turn: what it says and how it was sent."""

    source: str
    text: str
    chunks: tuple[Chunk, ...]

    def turn(self) -> Turn:
        finals = tuple(chunk.text for chunk in self.chunks if not chunk.partial)
        return Turn(self.source, self.text, self.chunks[0].at, self.chunks[-1].at, finals)


class Script(NamedTuple):
    pause: float
    said: tuple[Said, ...]
    #: When ``handle_timer`` is called: after the chunk of that index (-1: before any).
    timers: tuple[tuple[int, float], ...]
    #: The last chunk's time plus any gap.
    end_at: float

    def chunks(self) -> list[tuple[str, Chunk]]:
        return [(said.source, chunk) for said in self.said for chunk in said.chunks]

    def expected_events(self) -> list[Event]:
        events: list[Event] = []
        for said in self.said:
            if said.source == ASSISTANT:
                events.append(ReplyStarted())
            events.append(ended(said.turn()))
        return events


def split(draw: st.DrawFn, text: str) -> list[str]:
    """``text`` cut at arbitrary points (a cut twice at one point: an empty chunk)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
    bounds = [0, *cuts, len(text)]
    return [text[start:stop] for start, stop in itertools.pairwise(bounds)]


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    pause_ticks = draw(st.integers(1, 16))
    gap_inside = st.integers(0, pause_ticks - 1)
    gap_same_source = st.integers(pause_ticks, 3 * pause_ticks)
    gap_other_source = st.integers(0, 3 * pause_ticks)
    partials = st.lists(st.text(max_size=6), max_size=1)
    said: list[Said] = []
    now = START + TICK * draw(st.integers(0, 8))
    for number in range(draw(st.integers(1, 6))):
        source = draw(st.sampled_from([ASSISTANT, USER]))
        text = draw(st.text(min_size=1, max_size=12))
        # Provisional chunks may come before, between and after the final ones.
        pieces: list[tuple[str, bool]] = []
        for piece in split(draw, text):
            pieces += [(partial, True) for partial in draw(partials)]
            pieces.append((piece, False))
        pieces += [(partial, True) for partial in draw(partials)]
        chunks: list[Chunk] = []
        for index, (piece, partial) in enumerate(pieces):
            if index > 0:
                gap = gap_inside
            elif number == 0:
                gap = st.just(0)
            else:
                gap = gap_same_source if said[-1].source == source else gap_other_source
            now += TICK * draw(gap)
            chunks.append(Chunk(now, piece, partial))
        said.append(Said(source, text, tuple(chunks)))
    # handle_timer at arbitrary times, in order: before any chunk, between
    # two (at either one's time or in between), and after the last.
    times = [chunk.at for each in said for chunk in each.chunks]
    end_at = times[-1] + TICK * draw(st.integers(0, 3 * pause_ticks))
    timers: list[tuple[int, float]] = []
    for after, (start, stop) in enumerate(zip([START, *times], [*times, end_at], strict=True)):
        ticks = round((stop - start) / TICK)
        offsets = draw(st.lists(st.integers(0, ticks), max_size=2))
        timers += [(after - 1, start + TICK * offset) for offset in sorted(offsets)]
    return Script(TICK * pause_ticks, tuple(said), tuple(timers), end_at)


def play(
    script: Script,
    chunk: Callable[[str, Chunk], None],
    timer: Callable[[float], None],
) -> None:
    """Feed ``script``'s chunks and timer calls, in order, to ``chunk`` and ``timer``."""
    timers = list(script.timers)

    def timers_due(after: int) -> None:
        while timers and timers[0][0] == after:
            timer(timers.pop(0)[1])

    timers_due(-1)
    for index, (source, each) in enumerate(script.chunks()):
        chunk(source, each)
        timers_due(index)
    assert timers == []


def check_turns(transcript: Sequence[Turn], events: Sequence[Event], script: Script) -> None:
    assert [(turn.source, turn.text) for turn in transcript] == [
        (said.source, said.text) for said in script.said
    ]
    assert list(transcript) == [said.turn() for said in script.said]
    assert [event for event in events if isinstance(event, TURN_EVENTS)] == script.expected_events()


@settings(max_examples=examples(300), deadline=None)
@given(script=scripts())
def test_any_chunking_and_timing_of_the_same_words_gives_the_same_turns(script: Script) -> None:
    tracker = TurnTracker(pause=script.pause)
    events: list[Event] = []

    def chunk(source: str, piece: Chunk) -> None:
        events.extend(tracker.chunk(source, piece.text, partial=piece.partial, now=piece.at))
        current = tracker.current
        assert current is not None
        assert (current.source, current.ended_at) == (source, piece.at)

    def timer(now: float) -> None:
        events.extend(tracker.handle_timer(now=now))

    play(script, chunk, timer)
    events += tracker.end()
    assert tracker.current is None
    assert tracker.next_deadline() is None
    check_turns(tracker.transcript, events, script)


#: How the property's conversation ends: each way ends the last turn.
ENDINGS = ("result", "error", "close", "timer", "send text")


@settings(max_examples=examples(150), deadline=None)
@given(script=scripts(), ending=st.sampled_from(ENDINGS))
def test_a_client_s_transcript_is_the_words_its_server_sent(script: Script, ending: str) -> None:
    client = ClientConnection(reply_pause=script.pause)
    server = ServerConnection(now=START)
    events: list[Event] = []

    def deliver(now: float) -> None:
        for frame in client.frames_to_send():
            server.receive_frame(frame, now=now)
        for frame in server.frames_to_send():
            client.receive_frame(frame, now=now)
        server.events_received()
        events.extend(client.events_received())

    def chunk(source: str, piece: Chunk) -> None:
        server.send_text(piece.text, source=source, partial=piece.partial, now=piece.at)
        deliver(piece.at)

    def timer(now: float) -> None:
        client.handle_timer(now=now)
        events.extend(client.events_received())

    client.initialize(CallType.CHAT, now=START)
    deliver(START)
    server.accept(job_id="job-1", now=START)
    deliver(START)
    events.clear()
    play(script, chunk, timer)
    end_at = script.end_at
    if ending == "result":
        server.end(now=end_at)
    elif ending == "error":
        server.send_error("Invalid token", now=end_at)
    elif ending == "close":
        client.receive_close(1011, "going away")
    elif ending == "timer":
        # The driver calls it at the deadline (timer calls never go back in time).
        client.handle_timer(now=max(end_at, script.chunks()[-1][1].at + script.pause))
    else:
        client.send_text("Bye", now=end_at)
    deliver(end_at)
    assert client.current_turn is None
    check_turns(client.transcript, events, script)
    # Every chunk is reported as it came, the agent's first one after its ReplyStarted.
    reported = [event for event in events if isinstance(event, TextReceived | ReplyStarted)]
    expected: list[Event] = []
    for said in script.said:
        if said.source == ASSISTANT:
            expected.append(ReplyStarted())
        expected += [TextReceived(said.source, c.text, c.partial) for c in said.chunks]
    assert reported == expected
    # The last turn ends before the conversation's end is reported.
    kinds = [type(event) for event in events]
    last_turn_event = max(i for i, kind in enumerate(kinds) if kind in TURN_EVENTS)
    finals = [i for i, kind in enumerate(kinds) if kind in FINAL_EVENTS]
    assert (finals != []) is (ending in ("result", "error", "close"))
    assert all(last_turn_event < i for i in finals)


# A reply, as the drivers return it.


def test_a_reply_is_timed_from_the_send_before_it() -> None:
    turn = Turn(ASSISTANT, "Hi there", T + 1.0, T + 1.5, ("Hi ", "there"))
    reply = Reply.of(turn, sent_at=T + 0.25)
    assert (reply.text, reply.chunks) == ("Hi there", ("Hi ", "there"))
    assert reply.latency == Latency(first_chunk=0.75, end=1.25)


def test_a_reply_with_nothing_sent_before_it_has_no_latency() -> None:
    turn = Turn(ASSISTANT, "Hello", T, T, ("Hello",))
    assert Reply.of(turn, sent_at=None).latency is None
    # Sent after the reply began: the reply does not answer it.
    assert Reply.of(turn, sent_at=T + 0.5).latency is None
