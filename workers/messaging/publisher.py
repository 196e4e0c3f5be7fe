"""Publishing: one Celery task per subscriber of an event, routed to the subscriber's queue."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from kombu.messaging import Producer

from workers.messaging import chaos
from workers.messaging.envelope import Envelope
from workers.messaging.subscriptions import queue_of, recipients

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


class Unroutable(Exception):
    """RabbitMQ returned a message because no queue is bound for it (the queue or its binding
    was deleted): the message went nowhere, so its sender keeps it (an outbox row stays
    unpublished, a dead letter stays parked). The queue and its bindings are declared again
    before this is raised, so the next send goes through. Redis cannot return one: each message
    is pushed to its queue's list by name."""


def send_to(app: Celery, task_name: str, event: Mapping[str, Any], **options: Any) -> None:
    """Send one event (its JSON) to one subscriber task, on that task's queue; ``options`` are
    ``send_task``'s (``producer`` one of the app's, or one is taken from the pool). Raises
    Unroutable when RabbitMQ returns the message, and what kombu raises when the broker is away.

    On RabbitMQ the message is published mandatory, under the publisher confirms Celery is
    configured with (``confirm_publish``): the broker returns an unroutable message before it
    confirms it, so by the time this returns the message is in a queue.

    What Flower and the task events show as the arguments is the event's type, id and order, not
    the whole event: Celery would otherwise build a repr of every body (customer, address,
    sealed card) for each message it sends, and show it.
    """
    with app.producer_or_acquire(options.pop("producer", None)) as producer:
        queue = queue_of(task_name)
        if producer.connection.transport.driver_type != "amqp":
            app.send_task(
                task_name, args=[event], queue=queue, producer=producer, **shown(event), **options
            )
            return
        returned: list[str] = []
        channel = producer.channel
        on_return = lambda exc, exchange, routing_key, message: returned.append(routing_key)  # noqa: E731
        channel.events["basic_return"].add(on_return)
        try:
            app.send_task(
                task_name,
                args=[event],
                queue=queue,
                producer=producer,
                mandatory=True,
                **shown(event),
                **options,
            )
        finally:
            channel.events["basic_return"].discard(on_return)
        if returned:
            _bind_again(app, producer, queue)
            raise Unroutable(
                f"RabbitMQ returned {shown(event)['argsrepr']} for {task_name}: no queue is bound "
                f"to routing key {returned[0]!r} (queue {queue!r} or its binding was deleted)"
            )


def _bind_again(app: Celery, producer: Producer, name: str) -> None:
    """Declare the queue ``name`` and its bindings again, as a worker of it does at start: its
    own binding, and on a topic exchange the ``#.<queue>`` one through which Celery's native
    delayed delivery hands back retries (a topic pattern that also matches ``<queue>``)."""
    queue = app.amqp.queues[name]
    queue.declare(channel=producer.channel)
    if queue.exchange.type == "topic":
        producer.channel.queue_bind(
            queue=queue.name, exchange=queue.exchange.name, routing_key=f"#.{queue.routing_key}"
        )


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
    """Send every event to each of its subscribers that wants it (``recipients``); raises if
    the broker cannot take them."""
    if not events:
        return
    with app.producer_or_acquire() as producer:
        for event in events:
            for task_name in recipients(event):
                # One send, unless the failure matrix's reordering hook is on (never in production).
                for chaos_options in chaos.sends(event.id, task_name):
                    send_to(
                        app,
                        task_name,
                        event.to_dict(),
                        task_id=task_id_for(event, task_name),
                        producer=producer,
                        retry=True,
                        retry_policy=retry_policy or INLINE_RETRY_POLICY,
                        **chaos_options,
                    )
    log.debug("published %d event(s)", len(events))
