"""The limits' arithmetic, without sockets: the token bucket and a record's bounds."""

from __future__ import annotations

import pytest
from blackbox_emulator._bucket import FRAME_COST_UNIT, TokenBucket, frame_cost
from blackbox_emulator.records import ConversationRecord, Direction


def test_a_full_bucket_lets_a_burst_through_then_the_rate() -> None:
    # Powers of two: the arithmetic is exact.
    bucket = TokenBucket(8.0, 3, now=64.0)
    for _ in range(3):
        assert bucket.delay(now=64.0) == 0.0
        bucket.take(1, now=64.0)

    assert bucket.delay(now=64.0) == 0.125
    assert bucket.delay(now=64.0625) == 0.0625
    assert bucket.delay(now=64.125) == 0.0


def test_the_bucket_saves_up_no_more_than_the_burst() -> None:
    bucket = TokenBucket(10.0, 2, now=0.0)
    bucket.take(2, now=0.0)
    bucket.take(2, now=3600.0)  # an hour idle refills 2, not 36000

    assert bucket.delay(now=3600.0) == pytest.approx(0.1)


def test_a_costly_frame_puts_the_bucket_in_debt() -> None:
    bucket = TokenBucket(4.0, 4, now=0.0)
    bucket.take(10, now=0.0)  # -6: the next frame waits for 7 tokens

    assert bucket.delay(now=0.0) == pytest.approx(7 / 4)
    assert bucket.delay(now=1.0) == pytest.approx(3 / 4)


def test_a_frame_costs_one_plus_one_per_full_unit() -> None:
    assert frame_cost("") == 1
    assert frame_cost("x" * (FRAME_COST_UNIT - 1)) == 1
    assert frame_cost(b"x" * FRAME_COST_UNIT) == 2
    assert frame_cost("x" * (16 * FRAME_COST_UNIT + 1)) == 17


def test_a_record_keeps_frames_up_to_its_size_and_counts_the_others() -> None:
    record = ConversationRecord(number=1, path="/", max_size=10)
    record.add(Direction.IN, "12345", 0.0)
    record.add(Direction.OUT, "123456", 1.0)  # 11 characters in all: dropped
    record.add(Direction.OUT, b"12345", 2.0)  # fits in what is left

    assert [frame.data for frame in record.frames] == ["12345", b"12345"]
    assert record.frames_dropped == 1


def test_a_record_keeps_so_many_frames() -> None:
    record = ConversationRecord(number=1, path="/", max_frames=2)
    for n in range(5):
        record.add(Direction.IN, str(n), float(n))

    assert [frame.data for frame in record.frames] == ["0", "1"]
    assert record.frames_dropped == 3


def test_an_unbounded_record_keeps_everything() -> None:
    record = ConversationRecord(number=1, path="/")
    for n in range(1000):
        record.add(Direction.IN, "x" * 100, float(n))

    assert len(record.frames) == 1000
    assert record.frames_dropped == 0
