"""The safety net under the broker: an event a subscriber never applied is sent to it again.

The outbox guarantees an event reaches the broker; the inboxes record who applied it. Between
the two, a broker can still lose a message: kombu's Redis transport takes a message off its list
before it records it as unacknowledged, so a worker killed in between loses it, and a Redis
that crashes loses its last second of writes. This sweep compares each component's outbox with
its subscribers' inboxes and re-sends what is missing. Every consumer is idempotent, so a
re-send that crosses a slow first delivery does no harm. The relay runs it every
REDELIVERY_INTERVAL_S (workers.cli).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import case, null, select

from config.settings import QUEUES, REDELIVERY_WATCH_S
from workers.messaging.database import engine_for, transaction, upsert_insert
from workers.messaging.envelope import Envelope, as_utc
from workers.messaging.outbox import EMITTING_COMPONENTS
from workers.messaging.publisher import send_to, task_id_for
from workers.messaging.subscriptions import (
    INTEREST_FIELDS,
    INTERESTS,
    queue_of,
    recipients,
    subscribers_of,
)
from workers.messaging.tables import inbox, outbox, subscriber_lag
from workers.operations import dlq

log = logging.getLogger(__name__)

# An event is looked at again on every sweep for this long after it stalled; enough sweeps for
# a re-send to be re-sent should it be lost too, few enough rows to keep a sweep cheap.
WATCH = timedelta(seconds=REDELIVERY_WATCH_S)

# Events looked at per query: memory and the number of bound parameters stay bounded however
# many orders the window holds (a drained backlog of 5,000 orders is 40,000 events).
CHUNK = 500

Key = tuple[str, str]  # (event id, subscriber task)


def redeliver_unapplied(app: Celery, now: datetime, stall_after: timedelta) -> int:
    """Re-send every event published between ``stall_after + WATCH`` and ``stall_after`` before
    ``now`` (an aware datetime) that one of its subscribers has neither applied nor ever parked
    (a letter, whatever became of it, is an operator's to replay or discard), to
    that subscriber alone, with the task id of its first delivery; returns how many messages were
    sent. Then records, per component queue, when the oldest of them was written
    (``subscriber_lag``, which /metrics reports). Raises what kombu raises when the broker is
    away, sqlalchemy.exc.SQLAlchemyError when a database is."""
    sent = 0
    oldest: dict[str, datetime] = {}
    for component in EMITTING_COMPONENTS:
        for chunk in _stalled(component, now, stall_after):
            missing, events = _missing(component, chunk)
            for event_id, task in missing:
                written, queue = chunk[event_id].created_at, queue_of(task)
                oldest[queue] = min(oldest.get(queue, written), written)
            if missing:
                _resend(app, missing, events)
                sent += len(missing)
    if sent:
        log.warning(
            "re-sent %d event(s) that a subscriber had not applied %ds after publishing",
            sent,
            stall_after.total_seconds(),
        )
    record_lag(now, oldest)
    return sent


def record_lag(now: datetime, oldest: dict[str, datetime]) -> None:
    """Write what a sweep at ``now`` found: for each component queue, when the oldest event its
    subscribers had not applied was written (``oldest``; none: NULL). Raises
    sqlalchemy.exc.SQLAlchemyError when the operations database is away."""
    with transaction("operations") as conn:
        stmt = upsert_insert(conn, subscriber_lag)
        stmt = stmt.on_conflict_do_update(
            index_elements=[subscriber_lag.c.queue],
            set_={
                "oldest_unapplied_at": stmt.excluded.oldest_unapplied_at,
                "checked_at": stmt.excluded.checked_at,
            },
        )
        conn.execute(
            stmt,
            [
                {"queue": queue, "oldest_unapplied_at": oldest.get(queue), "checked_at": now}
                for queue in QUEUES
            ],
        )


def unapplied(now: datetime, stall_after: timedelta) -> list[Key]:
    """What ``redeliver_unapplied`` would re-send now, sending nothing: (event id, subscriber
    task) pairs. Raises sqlalchemy.exc.SQLAlchemyError when a database is away."""
    return [
        key
        for component in EMITTING_COMPONENTS
        for chunk in _stalled(component, now, stall_after)
        for key in _missing(component, chunk)[0]
    ]


@dataclass(frozen=True)
class _Written:
    type: str
    created_at: datetime
    # The field an Interest reads (INTEREST_FIELDS), for a type one narrows; else None.
    picked: str | None = None


def _stalled(
    component: str, now: datetime, stall_after: timedelta
) -> Iterator[dict[str, _Written]]:
    """The component's events in the window, CHUNK at a time, as event id -> type and time
    written, and the field an Interest reads where one narrows the type (no bodies: most are
    applied, and only the missing ones are read in full)."""
    newest, oldest = now - stall_after, now - stall_after - WATCH
    after = -1
    while True:
        query = (
            select(outbox.c.seq, outbox.c.id, outbox.c.type, outbox.c.created_at, _PICKED)
            .where(
                outbox.c.published_at.is_not(None),
                outbox.c.created_at <= newest,
                outbox.c.created_at >= oldest,
                outbox.c.seq > after,
            )
            .order_by(outbox.c.seq)
            .limit(CHUNK)
        )
        with engine_for(component).connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return
        after = rows[-1].seq
        yield {row.id: _Written(row.type, as_utc(row.created_at), row.picked) for row in rows}


# The field an Interest reads, taken from the stored event by the database (a JSON path), for
# the types INTEREST_FIELDS names; NULL for the others.
_PICKED = (
    case(
        *(
            (outbox.c.type == type_, outbox.c.event[("data", field)].as_string())
            for type_, field in INTEREST_FIELDS.items()
        ),
        else_=null(),
    )
    if INTEREST_FIELDS
    else null()
).label("picked")


def _missing(component: str, chunk: dict[str, _Written]) -> tuple[list[Key], dict[str, Envelope]]:
    """The (event id, task) pairs of ``chunk`` (events ``component`` wrote) that a subscriber
    expects and has neither applied nor parked, and those events read in full."""
    keys = _unapplied(chunk)
    if not keys:
        return [], {}
    query = select(outbox.c.id, outbox.c.event).where(
        outbox.c.id.in_(sorted({event_id for event_id, _task in keys}))
    )
    with engine_for(component).connect() as conn:
        events = {row.id: Envelope.from_dict(row.event) for row in conn.execute(query)}
    # An event pruned meanwhile is out of the window; an older version of a narrowed type is
    # read in full here (upcast), the current one was sorted out by its picked field already.
    expected = [(e, task) for e, task in keys if e in events and task in recipients(events[e])]
    return expected, events


def _unapplied(chunk: dict[str, _Written]) -> list[Key]:
    wanted: dict[str, list[Key]] = defaultdict(list)  # subscriber component -> keys
    for event_id, written in chunk.items():
        for task in subscribers_of(written.type):
            interest = INTERESTS.get(task) if written.type in INTEREST_FIELDS else None
            if interest is not None and not interest.wants({interest.field: written.picked}):
                continue  # never sent: the event is not what the task's Interest is
            wanted[queue_of(task)].append((event_id, task))
    if not wanted:
        return []
    lettered = dlq.letter_keys(list(chunk))
    missing: list[Key] = []
    for component, keys in wanted.items():
        applied = _applied(component, sorted({event_id for event_id, _task in keys}))
        missing.extend(key for key in keys if key not in applied and key not in lettered)
    return missing


def _applied(component: str, event_ids: list[str]) -> set[Key]:
    query = select(inbox.c.event_id, inbox.c.consumer).where(inbox.c.event_id.in_(event_ids))
    with engine_for(component).connect() as conn:
        return {(row.event_id, row.consumer) for row in conn.execute(query)}


def _resend(app: Celery, missing: list[Key], events: dict[str, Envelope]) -> None:
    with app.producer_or_acquire() as producer:
        for event_id, task in missing:
            event = events[event_id]
            send_to(app, task, event.to_dict(), task_id=task_id_for(event, task), producer=producer)
