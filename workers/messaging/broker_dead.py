"""RabbitMQ's own dead letters: the dead-letter exchange, and draining it into the store."""

from __future__ import annotations

import json
import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.message import Message

from workers.messaging import deadletters

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "shoeshop.dlx"
DEAD_QUEUE = "shoeshop.dead"
# A message delivered this often without being acknowledged keeps killing its worker (or is
# rejected again and again); the broker then moves it to the dead-letter exchange. Ten is far
# above what a crash-and-restart of a healthy worker costs, yet ends a crash loop in minutes.
DELIVERY_LIMIT = 10
# One drain takes at most this many messages, so one sweep never holds the store for long.
DRAIN_BATCH = 500


def is_amqp(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def component_queue_arguments() -> dict[str, Any]:
    """The arguments every component queue is declared with on RabbitMQ."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    }


def dead_queue() -> Queue:
    # Fanout: whatever a component queue dead-letters lands here, whatever its routing key.
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)  # type: ignore[no-untyped-call]
    arguments = {"x-queue-type": "quorum"}
    return Queue(DEAD_QUEUE, exchange, durable=True, queue_arguments=arguments)  # type: ignore[no-untyped-call]


def declare(connection: Connection) -> None:
    """Create the exchange and queue; without them RabbitMQ would drop what it dead-letters."""
    dead_queue().bind(connection.default_channel).declare()  # type: ignore[no-untyped-call]


def _declare_when_a_worker_starts(sender: Any = None, **_kwargs: Any) -> None:
    app = getattr(sender, "app", None)
    if app is None or not is_amqp(str(app.conf.broker_url)):
        return
    with app.connection_for_write() as connection:
        declare(connection)


# Every worker declares the dead-letter route as it starts, before it can reject anything.
worker_ready.connect(_declare_when_a_worker_starts, weak=False)


def drain(app: Celery, limit: int = DRAIN_BATCH) -> int:
    """Park every message waiting in ``shoeshop.dead``; returns how many were parked."""
    if not is_amqp(str(app.conf.broker_url)):
        return 0  # Redis has no dead-letter exchange: the consumer parks everything itself
    moved = 0
    with app.connection_for_write() as connection:
        queue = dead_queue().bind(connection.default_channel)  # type: ignore[no-untyped-call]
        queue.declare()
        while moved < limit:
            message = queue.get(no_ack=False, accept=["json"])
            if message is None:
                break
            _park(message)
            # Acknowledged only once parked: a crash here leaves the message for the next drain.
            message.ack()
            moved += 1
    if moved:
        log.warning("moved %d message(s) the broker dead-lettered into the dead letters", moved)
    return moved


def _park(message: Message) -> None:
    headers: dict[str, Any] = dict(message.headers or {})
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths else {}
    task = str(headers.get("task") or "unknown")
    queue = str(first.get("queue") or "unknown")
    attempts = int(headers.get("x-delivery-count") or 0) + 1
    reason = json.dumps(deaths, default=str)
    deadletters.park_rejected(task, queue, _event_of(message), reason, attempts)


def _event_of(message: Message) -> object:
    """The event a Celery task message carried: the first positional argument."""
    try:
        body = message.decode()  # type: ignore[no-untyped-call]
    except Exception:  # not JSON, or content we refuse to decode: keep the raw bytes' repr
        return repr(message.body)
    if isinstance(body, list) and body and isinstance(body[0], list) and body[0]:
        return body[0][0]
    return body
