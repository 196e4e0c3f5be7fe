"""Publishing: one Celery task per subscriber of an event, routed to the subscriber's queue."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery

from workers.messaging.envelope import Envelope
from workers.messaging.subscriptions import queue_of, subscribers_of

log = logging.getLogger(__name__)

# Right after a commit the caller is waiting (a checkout, a worker): try briefly and leave the
# rest to the relay, which retries for as long as the broker is away.
INLINE_RETRY_POLICY: dict[str, Any] = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}


def task_id_for(event: Envelope, task_name: str) -> str:
    """Stable per (event, subscriber): a re-sent event is recognisable in Flower and the logs."""
    return str(uuid.uuid5(uuid.UUID(event.id), task_name))


def send_to(app: Celery, task_name: str, event: Mapping[str, Any], **options: Any) -> None:
    """Send one event (its JSON) to one subscriber task, on that task's queue.

    What Flower and the task events show as the arguments is the event's type, id and order, not
    the whole event: Celery would otherwise build a repr of every body (customer, address,
    sealed card) for each message it sends, and show it.
    """
    app.send_task(task_name, args=[event], queue=queue_of(task_name), **shown(event), **options)


def shown(event: object) -> dict[str, str]:
    """The ``argsrepr`` and ``kwargsrepr`` options that make Flower and the task events show
    an event's type, id and order instead of its body: for every send of one, a retry too."""
    given = event if isinstance(event, Mapping) else {}
    return {
        "argsrepr": f"[{given.get('type')} id={given.get('id')} order={given.get('subject')}]",
        "kwargsrepr": "{}",
    }


def publish(
    app: Celery, events: Sequence[Envelope], retry_policy: dict[str, Any] | None = None
) -> None:
    """Send every event to each of its subscribers; raises if the broker cannot take them."""
    if not events:
        return
    with app.producer_or_acquire() as producer:
        for event in events:
            for task_name in subscribers_of(event.type):
                send_to(
                    app,
                    task_name,
                    event.to_dict(),
                    task_id=task_id_for(event, task_name),
                    producer=producer,
                    retry=True,
                    retry_policy=retry_policy or INLINE_RETRY_POLICY,
                )
    log.debug("published %d event(s)", len(events))
