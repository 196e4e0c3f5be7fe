"""The admin chart's buckets: one per minute, oldest first, nothing outside the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shop.throughput import per_minute

NOW = datetime(2026, 11, 26, 12, 30, 40, tzinfo=UTC)


def test_events_fall_into_their_minute() -> None:
    placed = [NOW - timedelta(seconds=10), NOW - timedelta(seconds=20), NOW - timedelta(minutes=2)]
    shipped = [NOW - timedelta(seconds=5)]

    minutes = per_minute(placed, shipped, NOW, minutes=3)

    assert [(m.placed, m.shipped) for m in minutes] == [(1, 0), (0, 0), (2, 1)]
    assert minutes[-1].start == NOW.replace(second=0)


def test_events_outside_the_window_are_left_out() -> None:
    minutes = per_minute(
        [NOW - timedelta(hours=1), NOW + timedelta(minutes=5)], [], NOW, minutes=15
    )
    assert sum(m.placed for m in minutes) == 0
    assert len(minutes) == 15


def test_naive_times_from_sqlite_are_read_as_utc() -> None:
    naive = (NOW - timedelta(seconds=1)).replace(tzinfo=None)
    assert per_minute([naive], [], NOW, minutes=1)[0].placed == 1
