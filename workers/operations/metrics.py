"""The operators' metrics: every component's outbox backlog, the dead letters parked, how far
each queue's subscribers are behind what was published to them, and the orders whose deadline
passed without their timer acting on it.

Each reader yields prometheus_client metric families, read at scrape time from the databases
(operations is the one component that reads every component's outbox). The shop's ``/metrics``
reports them as the sources ``outbox``, ``dead_letters``, ``subscribers`` and ``deadlines``
because the admin blueprint adds them there (``shop.web.admin.add_metric_sources``, called by the
app factory); no other module of the shop imports this one. Each reader raises
sqlalchemy.exc.SQLAlchemyError when a database it reads is away; the collector then reports that
source as down and still reports the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Column, DateTime, MetaData, Table, func, select

from config.settings import COMPONENTS, QUEUES, get_settings
from workers.messaging import outbox
from workers.messaging.database import engine_for
from workers.messaging.deadletters import PARKED
from workers.messaging.envelope import as_utc, utcnow
from workers.messaging.tables import dead_letters, subscriber_lag

__all__ = [
    "DEADLINE_GRACE",
    "PastDeadline",
    "SubscriberLag",
    "dead_letter_metrics",
    "deadline_metrics",
    "outbox_metrics",
    "past_deadline",
    "subscriber_lags",
    "subscriber_metrics",
]


def outbox_metrics() -> Iterator[Metric]:
    """Every component's outbox (a table of the messaging kit, in each component's database)."""
    backlog = GaugeMetricFamily(
        "shoeshop_outbox_backlog", "Events written but not yet published.", labels=["component"]
    )
    age = GaugeMetricFamily(
        "shoeshop_outbox_oldest_unpublished_age_seconds",
        "Age of the oldest unpublished event; 0 when the outbox is empty.",
        labels=["component"],
    )
    for component in COMPONENTS:
        with engine_for(component).connect() as conn:
            backlog.add_metric([component], outbox.backlog(conn))
            age.add_metric([component], outbox.oldest_unpublished_age(conn))
    yield from (backlog, age)


def dead_letter_metrics() -> Iterator[Metric]:
    """The letters parked right now, by the queue they came from (every component queue, 0 when
    none is parked; ``unknown`` and any other queue a letter names when some are)."""
    parked = GaugeMetricFamily(
        "shoeshop_dead_letters_parked",
        "Messages parked after failing for good, by the queue they came from.",
        labels=["queue"],
    )
    by_queue = _parked_by_queue()
    for queue in sorted({*QUEUES, *by_queue}):
        parked.add_metric([queue], by_queue.get(queue, 0))
    yield parked


def _parked_by_queue() -> dict[str, int]:
    # Counted by the database: a scrape does not load every parked letter and its traceback.
    query = (
        select(dead_letters.c.queue, func.count())
        .where(dead_letters.c.status == PARKED)
        .group_by(dead_letters.c.queue)
    )
    with engine_for("operations").connect() as conn:
        return {queue: int(count) for queue, count in conn.execute(query).all()}


@dataclass(frozen=True)
class SubscriberLag:
    """One component queue as the relay's last redelivery sweep found it: ``behind_s`` the age in
    seconds of the oldest event published to its subscribers that they have neither applied nor
    parked (0.0: none), ``checked_age_s`` seconds since that sweep (None: no sweep yet), and
    ``stalled`` when ``behind_s`` is past ``SHOESHOP_STALL_AFTER``."""

    queue: str
    behind_s: float
    checked_age_s: float | None
    stalled: bool


def subscriber_lags() -> list[SubscriberLag]:
    """Every component queue's lag (``subscriber_lag``, written by the redelivery sweep). Raises
    sqlalchemy.exc.SQLAlchemyError when the operations database is away."""
    with engine_for("operations").connect() as conn:
        rows = {row.queue: row for row in conn.execute(select(subscriber_lag)).all()}
    now, stall_after = utcnow(), get_settings().stall_after_s
    lags = []
    for queue in QUEUES:
        row = rows.get(queue)
        oldest = row.oldest_unapplied_at if row is not None else None
        behind = (now - as_utc(oldest)).total_seconds() if oldest else 0.0
        checked = (now - as_utc(row.checked_at)).total_seconds() if row is not None else None
        lags.append(SubscriberLag(queue, behind, checked, behind > stall_after))
    return lags


def subscriber_metrics() -> Iterator[Metric]:
    """For each component queue, the age in seconds of the oldest event published to its
    subscribers that they have neither applied nor parked, as the relay's last redelivery sweep
    found it (``subscriber_lag``): 0 when it found none, or before any sweep ran. The sweep looks
    at events past ``SHOESHOP_REDELIVER_AFTER`` (younger ones are still on their first way), so a
    value above 0 is at least that: a subscriber that stays connected and applies nothing. When
    the sweep last ran is ``shoeshop_subscriber_lag_checked_age_seconds`` (a stopped relay stops
    it); ``shoeshop_pipeline_stalled`` is 1 for a queue behind by more than
    ``SHOESHOP_STALL_AFTER`` seconds (600 by default), else 0."""
    age = GaugeMetricFamily(
        "shoeshop_subscriber_oldest_unapplied_age_seconds",
        "Age of the oldest published event a queue's subscribers have not applied, as the last "
        "redelivery sweep found it; 0 when none.",
        labels=["queue"],
    )
    checked = GaugeMetricFamily(
        "shoeshop_subscriber_lag_checked_age_seconds",
        "Seconds since the redelivery sweep last recorded the queue's lag; absent before any.",
        labels=["queue"],
    )
    stalled = GaugeMetricFamily(
        "shoeshop_pipeline_stalled",
        "1 when the queue's subscribers have left an event unapplied past SHOESHOP_STALL_AFTER.",
        labels=["queue"],
    )
    for lag in subscriber_lags():
        age.add_metric([lag.queue], lag.behind_s)
        stalled.add_metric([lag.queue], 1.0 if lag.stalled else 0.0)
        if lag.checked_age_s is not None:
            checked.add_metric([lag.queue], lag.checked_age_s)
    yield from (age, checked, stalled)


# Beat nudges each timer's sweep every 10 s (config.celeryconfig.PAYMENT_SWEEP_INTERVAL_S), on
# its component's own queue: a deadline passed a minute ago has missed six sweeps. Younger ones
# are the sweep's ordinary delay, or a burst the queue is working through.
DEADLINE_GRACE = timedelta(seconds=60)

# Each timer's deadlines, a row per waiting order, removed (or set later) by the sweep that acts
# on it: orders' (workers.orders.store.deadlines: an unpaid or unshipped order) and the shop's
# (shop.tables.acceptance_deadlines: an order orders has not taken up). Named here by table and
# column, not imported: operations imports no component (pyproject.toml's contracts), and reads
# no more of them than the due time, by its index (tests/integration/test_query_plans.py).
# Tables of a metadata of their own, not lightweight table() clauses: only a Table is reached by
# the engine's schema_translate_map, which puts each component's schema on PostgreSQL.
_TIMERS = MetaData()
TIMER_TABLES = {
    "orders": Table("deadlines", _TIMERS, Column("due_at", DateTime(timezone=True))),
    "shop": Table("acceptance_deadlines", _TIMERS, Column("due_at", DateTime(timezone=True))),
}


@dataclass(frozen=True)
class PastDeadline:
    """One timer's orders whose deadline passed more than DEADLINE_GRACE ago: ``count`` of them,
    and ``oldest_s``, seconds since the earliest of those deadlines (0.0: none)."""

    component: str
    count: int
    oldest_s: float


def past_deadline(component: str, now: datetime) -> PastDeadline:
    """The orders of ``component``'s timer (a key of TIMER_TABLES) whose deadline passed more
    than DEADLINE_GRACE before ``now`` (an aware datetime), read in one indexed range. Raises
    sqlalchemy.exc.SQLAlchemyError when its database is away."""
    due_at = TIMER_TABLES[component].c.due_at
    query = select(func.count(), func.min(due_at)).where(due_at < now - DEADLINE_GRACE)
    with engine_for(component).connect() as conn:
        count, oldest = conn.execute(query).one()
    behind = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
    return PastDeadline(component, int(count), behind)


def deadline_metrics() -> Iterator[Metric]:
    """For each timer (``component``: ``orders`` for payment and shipping deadlines, ``shop``
    for acceptance), how many orders it has left past their deadline by more than
    DEADLINE_GRACE (60 s), and how long ago the earliest of those deadlines passed, in seconds
    (0 when none). Above 0, the timer's sweeps do not run (beat is not running, or the
    component's worker takes nothing) and those orders hold their stock past their time."""
    count = GaugeMetricFamily(
        "shoeshop_orders_past_deadline",
        "Orders whose status deadline passed over a minute ago, not yet acted on by the timer.",
        labels=["component"],
    )
    oldest = GaugeMetricFamily(
        "shoeshop_orders_past_deadline_oldest_age_seconds",
        "Seconds since the earliest deadline among those orders passed; 0 when none.",
        labels=["component"],
    )
    now = utcnow()
    for component in TIMER_TABLES:
        past = past_deadline(component, now)
        count.add_metric([component], past.count)
        oldest.add_metric([component], past.oldest_s)
    yield from (count, oldest)
