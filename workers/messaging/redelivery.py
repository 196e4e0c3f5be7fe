"""The safety net under the broker: an event a subscriber never applied is sent to it again.

The outbox guarantees an event reaches the broker; the inboxes record who applied it. Between
the two, a broker can still lose a message: kombu's Redis transport takes a message off its list
before it records it as unacknowledged, so a worker killed in between loses it, and a Redis
that crashes loses its last second of writes. This sweep compares each component's outbox with
its subscribers' inboxes and re-sends what is missing. Every consumer is idempotent, so a
re-send that crosses a slow first delivery does no harm.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from celery import Celery
from sqlalchemy import select

from workers.messaging import deadletters
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.publisher import task_id_for
from workers.messaging.relay import EMITTING_COMPONENTS
from workers.messaging.subscriptions import queue_of, subscribers_of
from workers.messaging.tables import inbox, outbox

log = logging.getLogger(__name__)

# An event is looked at again on every sweep for this long after it stalled; enough sweeps for
# a re-send to be re-sent should it be lost too, few enough rows to keep a sweep cheap.
WATCH = timedelta(minutes=10)

Missing = list[tuple[Envelope, str]]


def redeliver_unapplied(app: Celery, now: datetime, stall_after: timedelta) -> int:
    """Re-send every event published between ``stall_after + WATCH`` and ``stall_after`` ago
    that one of its subscribers has neither applied nor parked; returns how many were sent."""
    missing = _unapplied(_stalled_events(now, stall_after))
    if not missing:
        return 0
    with app.producer_or_acquire() as producer:
        for event, task in missing:
            app.send_task(
                task,
                args=[event.to_dict()],
                task_id=task_id_for(event, task),
                queue=queue_of(task),
                producer=producer,
            )
    log.warning(
        "re-sent %d event(s) that a subscriber had not applied %ds after publishing",
        len(missing),
        stall_after.total_seconds(),
    )
    return len(missing)


def _stalled_events(now: datetime, stall_after: timedelta) -> list[Envelope]:
    newest, oldest = now - stall_after, now - stall_after - WATCH
    query = select(outbox.c.event).where(
        outbox.c.published_at.is_not(None),
        outbox.c.created_at <= newest,
        outbox.c.created_at >= oldest,
    )
    events: list[Envelope] = []
    for component in EMITTING_COMPONENTS:
        with engine_for(component).connect() as conn:
            events.extend(Envelope.from_dict(body) for body in conn.execute(query).scalars())
    return events


def _unapplied(events: list[Envelope]) -> Missing:
    wanted: dict[str, Missing] = defaultdict(list)  # subscriber component -> (event, task)
    for event in events:
        for task in subscribers_of(event.type):
            wanted[queue_of(task)].append((event, task))
    if not wanted:
        return []
    parked = deadletters.parked_keys([event.id for event in events])
    missing: Missing = []
    for component, pairs in wanted.items():
        applied = _applied(component, [event.id for event, _task in pairs])
        missing.extend(
            (event, task)
            for event, task in pairs
            if (event.id, task) not in applied and (event.id, task) not in parked
        )
    return missing


def _applied(component: str, event_ids: list[str]) -> set[tuple[str, str]]:
    query = select(inbox.c.event_id, inbox.c.consumer).where(inbox.c.event_id.in_(event_ids))
    with engine_for(component).connect() as conn:
        return {(row.event_id, row.consumer) for row in conn.execute(query)}
