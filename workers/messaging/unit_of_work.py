"""A unit of work: one transaction holding a state change and the events it emits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from celery import Celery
from sqlalchemy import Connection

from workers.messaging import inbox
from workers.messaging.database import transaction
from workers.messaging.envelope import Envelope
from workers.messaging.outbox import Outbox
from workers.messaging.publish_marks import marks
from workers.messaging.publisher import publish

log = logging.getLogger(__name__)

Handler = Callable[[Connection, Envelope, Outbox], None]
"""Applies one event inside the transaction; emits follow-up events through the Outbox."""


@contextmanager
def unit_of_work(component: str) -> Iterator[Outbox]:
    """Commit on a clean exit, roll back on any exception; nothing is half-written."""
    with transaction(component) as conn:
        yield Outbox(conn)


def apply_once(
    component: str, consumer: str, event: Envelope, handler: Handler, attempts: int = 1
) -> list[Envelope]:
    """Run ``handler`` unless this consumer already applied ``event``; return what it emitted.
    Once committed, the effects the handler asked for (``Outbox.after_commit``) run."""
    with unit_of_work(component) as box:
        if not inbox.claim(box.conn, event.id, consumer, attempts):
            log.info("event %s already applied by %s: skipped", event.id, consumer)
            return []
        handler(box.conn, event, box)
    run_committed_effects(box)
    return box.emitted


def run_committed_effects(box: Outbox) -> None:
    """The effects a committed unit of work asked for, each on its own: one failing (a broker
    away) is logged and the others still run."""
    for effect in box.committed_effects:
        try:
            effect()
        except Exception as exc:
            log.warning("an effect after commit failed: %s", exc)


def publish_committed(app: Celery, component: str, events: Sequence[Envelope]) -> bool:
    """Publish events that are already committed; on failure the relay publishes them later.

    Their outbox rows are marked published in a batch shortly after (see `publish_marks`).
    """
    if not events:
        return True
    try:
        publish(app, events)
    except Exception as exc:  # the broker is away: the outbox still holds every event
        log.warning("publishing %d event(s) failed, the relay will retry: %s", len(events), exc)
        return False
    marks.add(component, [event.id for event in events])
    return True
