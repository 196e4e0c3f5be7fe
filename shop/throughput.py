"""Orders placed and shipped per minute over the last minutes, for the admin's small chart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from shop.tables import orders
from workers.messaging.envelope import as_utc

MINUTES = 15


@dataclass(frozen=True)
class Minute:
    start: datetime
    placed: int
    shipped: int


def per_minute(
    placed: Iterable[datetime], shipped: Iterable[datetime], now: datetime, minutes: int = MINUTES
) -> list[Minute]:
    """Count events into one-minute buckets ending at ``now``, oldest first (pure)."""
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    counts = [[0, 0] for _ in range(minutes)]
    for column, moments in ((0, placed), (1, shipped)):
        for moment in moments:
            index = int((as_utc(moment) - first).total_seconds() // 60)
            if 0 <= index < minutes:
                counts[index][column] += 1
    return [
        Minute(first + timedelta(minutes=i), placed=p, shipped=s) for i, (p, s) in enumerate(counts)
    ]


def recent(conn: Connection, now: datetime, minutes: int = MINUTES) -> list[Minute]:
    since = now - timedelta(minutes=minutes)
    placed = conn.execute(select(orders.c.created_at).where(orders.c.created_at >= since))
    shipped = conn.execute(
        select(orders.c.updated_at).where(
            orders.c.status == "SHIPPED", orders.c.updated_at >= since
        )
    )
    return per_minute(placed.scalars(), shipped.scalars(), now, minutes)
