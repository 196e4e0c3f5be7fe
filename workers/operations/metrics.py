"""The operators' metrics: every component's outbox backlog, the dead letters parked, and how
far each queue's subscribers are behind what was published to them.

Each reader yields prometheus_client metric families, read at scrape time from the databases
(operations is the one component that reads every component's outbox). The shop's ``/metrics``
reports them as the sources ``outbox`` and ``dead_letters`` because the admin blueprint adds them
there (``shop.web.admin.add_metric_sources``, called by the app factory); no other module of the
shop imports this one. Each reader raises sqlalchemy.exc.SQLAlchemyError when a database it
reads is away; the collector then reports that source as down and still reports the others.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from config.settings import COMPONENTS, QUEUES
from workers.messaging import outbox
from workers.messaging.database import engine_for
from workers.messaging.deadletters import PARKED
from workers.messaging.envelope import as_utc, utcnow
from workers.messaging.tables import dead_letters, subscriber_lag

__all__ = ["dead_letter_metrics", "outbox_metrics", "subscriber_metrics"]


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


def subscriber_metrics() -> Iterator[Metric]:
    """For each component queue, the age in seconds of the oldest event published to its
    subscribers that they have neither applied nor parked, as the relay's last redelivery sweep
    found it (``subscriber_lag``): 0 when it found none, or before any sweep ran. The sweep looks
    at events past ``SHOESHOP_REDELIVER_AFTER`` (younger ones are still on their first way), so a
    value above 0 is at least that: a subscriber that stays connected and applies nothing. When
    the sweep last ran is ``shoeshop_subscriber_lag_checked_age_seconds`` (a stopped relay stops
    it)."""
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
    with engine_for("operations").connect() as conn:
        rows = {row.queue: row for row in conn.execute(select(subscriber_lag)).all()}
    now = utcnow()
    for queue in QUEUES:
        row = rows.get(queue)
        oldest = row.oldest_unapplied_at if row is not None else None
        age.add_metric([queue], (now - as_utc(oldest)).total_seconds() if oldest else 0.0)
        if row is not None:
            checked.add_metric([queue], (now - as_utc(row.checked_at)).total_seconds())
    yield from (age, checked)
