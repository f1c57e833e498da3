"""Turns: the ``text`` chunks of a conversation assembled into who said what.

The protocol has no end-of-turn marker. The agent's reply comes as several
``text`` chunks; the user's words come back as ``text`` with ``source:
"user"`` (the echo of chat text, or the service's transcript of the caller
in a voice call). A turn is the chunks of one source in a row, and it ends:

- when its source has been quiet for ``pause`` seconds (the only guess);
- at once, when something makes the end certain: a chunk of another source
  (the next turn), the user's own chat text being sent, a tool request, the
  conversation's result, its failure or the socket's close.

A turn's ``ended_at`` is the time of its last chunk, not the time the end was
known: a reply's length does not depend on ``pause``.

Partial chunks (the service's ``type: "potential"``) are provisional: they
start a turn and keep it open, but the turn's text is its final chunks,
joined. A turn that only ever had partial chunks takes its last one.

Memory is bounded whatever the peer sends: a turn keeps at most
``MAX_TURN_CHUNKS`` chunks and ``MAX_TURN_CHARS`` characters (the rest is
counted in the turn's activity but not kept, and the turn says it was
``truncated``), and the transcript keeps the latest ``MAX_TURNS`` turns.

It is sans-IO: the time is passed in (``now``), in the caller's seconds.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from attrs import field, frozen

from blackbox_protocol.events import Event, ReplyEnded, ReplyStarted, UserTurnEnded

__all__ = [
    "ASSISTANT",
    "DEFAULT_REPLY_PAUSE",
    "MAX_TURNS",
    "MAX_TURN_CHARS",
    "MAX_TURN_CHUNKS",
    "USER",
    "Latency",
    "Reply",
    "Turn",
    "TurnTracker",
]

#: The agent's source.
ASSISTANT: Final = "assistant"
#: The user's source: the echo of chat text, or the caller's words in a voice call.
USER: Final = "user"
#: Seconds of a source's silence that end its turn, unless something ends it first.
DEFAULT_REPLY_PAUSE: Final = 1.0
#: The most chunks a turn keeps.
MAX_TURN_CHUNKS: Final = 4096
#: The most characters a turn keeps.
MAX_TURN_CHARS: Final = 64 * 1024
#: The most turns a transcript keeps (the oldest go first).
MAX_TURNS: Final = 1000


@frozen
class Turn:
    """One source's words, from its first chunk to its last."""

    #: ``"assistant"`` (the agent) or ``"user"``; another source the service sends, as sent.
    source: str
    #: The final chunks, joined (or the last partial one, when no final came).
    text: str
    #: When the first chunk came, in the connection's clock (its ``now``).
    started_at: float
    #: When the last chunk came.
    ended_at: float
    #: The final chunks, as they came.
    chunks: tuple[str, ...] = field(default=(), repr=False)
    #: True when the turn was longer than a turn keeps: ``text`` is its start.
    truncated: bool = False


@frozen
class Latency:
    """How long the agent took to reply, from the user's words being sent."""

    #: Seconds from the send to the reply's first chunk.
    first_chunk: float
    #: Seconds from the send to the reply's last chunk.
    end: float


@frozen
class Reply:
    """The agent's reply: what ``Call.ask`` and ``Call.wait_for_reply`` return."""

    #: The reply's turn: its chunks and times.
    turn: Turn
    #: From the user's last chunk of text sent before the reply; ``None`` when
    #: nothing was sent before it (a greeting).
    latency: Latency | None = None

    @property
    def text(self) -> str:
        """The reply's text: its chunks, joined."""
        return self.turn.text

    @property
    def chunks(self) -> tuple[str, ...]:
        """The reply's chunks, as they came."""
        return self.turn.chunks

    @classmethod
    def of(cls, turn: Turn, *, sent_at: float | None) -> Reply:
        """The reply of ``turn``, timed from ``sent_at`` (on the turn's clock) when given."""
        if sent_at is None or sent_at > turn.started_at:
            return cls(turn)
        return cls(turn, Latency(turn.started_at - sent_at, turn.ended_at - sent_at))


class _OpenTurn:
    """The turn being spoken: its chunks so far."""

    def __init__(self, source: str, now: float) -> None:
        self.source = source
        self.started_at = now
        self.last_at = now
        self.chunks: list[str] = []
        self.chars = 0
        self.last_partial = ""
        self.truncated = False

    def add(self, text: str, *, partial: bool, now: float) -> None:
        self.last_at = now
        if partial:
            self.last_partial = text
        # Once a chunk is dropped, so are the rest: a later, smaller one would fit,
        # but the text would then have a hole in it instead of being the turn's start.
        elif (
            not self.truncated
            and len(self.chunks) < MAX_TURN_CHUNKS
            and self.chars + len(text) <= MAX_TURN_CHARS
        ):
            self.chunks.append(text)
            self.chars += len(text)
        else:
            self.truncated = True

    def close(self) -> Turn:
        text = "".join(self.chunks) if self.chunks else self.last_partial
        return Turn(
            self.source,
            text,
            self.started_at,
            self.last_at,
            tuple(self.chunks),
            self.truncated,
        )


class TurnTracker:
    """Assembles ``text`` chunks into turns, and says when each starts and ends.

    Feed it every chunk (``chunk``), every certain end (``end``) and the
    timer (``handle_timer`` at ``next_deadline``); it returns the events:
    ``ReplyStarted`` at the agent's first chunk, ``ReplyEnded`` and
    ``UserTurnEnded`` as the turns end. A turn of another source goes to the
    transcript with no event.

    Args:
        pause: seconds of a source's silence that end its turn (positive).
    """

    def __init__(self, *, pause: float = DEFAULT_REPLY_PAUSE) -> None:
        self._pause = pause
        self._open: _OpenTurn | None = None
        self._turns: deque[Turn] = deque(maxlen=MAX_TURNS)

    @property
    def pause(self) -> float:
        """Seconds of silence that end a turn."""
        return self._pause

    @property
    def transcript(self) -> tuple[Turn, ...]:
        """The turns that have ended, oldest first (the latest ``MAX_TURNS``)."""
        return tuple(self._turns)

    @property
    def current(self) -> Turn | None:
        """The turn still being spoken, as it stands, or ``None``."""
        return None if self._open is None else self._open.close()

    def next_deadline(self) -> float | None:
        """When the open turn ends unless another chunk comes, or ``None``."""
        return None if self._open is None else self._open.last_at + self._pause

    def chunk(self, source: str, text: str, *, partial: bool, now: float) -> list[Event]:
        """A ``text`` chunk came: it continues the open turn, or starts one."""
        events = self.handle_timer(now=now)
        if self._open is not None and self._open.source != source:
            events += self.end()
        if self._open is None:
            self._open = _OpenTurn(source, now)
            if source == ASSISTANT:
                events.append(ReplyStarted())
        self._open.add(text, partial=partial, now=now)
        return events

    @property
    def speaker(self) -> str | None:
        """The source whose turn is open, or ``None``: cheaper than ``current``."""
        return None if self._open is None else self._open.source

    def activity(self, source: str, *, now: float) -> list[Event]:
        """``source`` is heard, with no text (voice activity): its turn starts or goes on.

        A turn of activity alone has no text; the pause ends it as any other.
        Media that tell turns from audio (``blackbox_media_file.TurnScript``)
        use this, so the quiet timer is the same everywhere.
        """
        return self.chunk(source, "", partial=True, now=now)

    def handle_timer(self, *, now: float) -> list[Event]:
        """End the open turn if its source has been quiet for ``pause`` by ``now``."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        return self.end()

    def end(self) -> list[Event]:
        """Something made the end certain: end the open turn, if any."""
        if self._open is None:
            return []
        turn, self._open = self._open.close(), None
        self._turns.append(turn)
        if turn.source == ASSISTANT:
            return [ReplyEnded(turn.text, turn)]
        if turn.source == USER:
            return [UserTurnEnded(turn.text, turn)]
        return []
