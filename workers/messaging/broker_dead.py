"""RabbitMQ's own dead letters: the arguments every component queue is declared with, and the
dead-letter exchange and queue (``shoeshop.dlx`` → ``shoeshop.dead``) that catch what the broker
gives up on. Every worker declares that route as it starts. Draining ``shoeshop.dead`` into the
dead letters is the operators' job: workers.operations.broker_drain."""

from __future__ import annotations

from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

DEAD_LETTER_EXCHANGE = "shoeshop.dlx"
DEAD_QUEUE = "shoeshop.dead"
# A message delivered this often without being acknowledged keeps killing its worker (or is
# rejected again and again); the broker then moves it to the dead-letter exchange. Ten is far
# above what a crash-and-restart of a healthy worker costs, yet ends a crash loop in minutes.
DELIVERY_LIMIT = 10


def is_amqp(broker_url: str) -> bool:
    """Whether the broker URL names RabbitMQ (``amqp``, ``amqps``, ``pyamqp``)."""
    return broker_url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def component_queue_arguments() -> dict[str, Any]:
    """The arguments every component queue is declared with on RabbitMQ."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    }


def dead_queue() -> Queue:
    """``shoeshop.dead``, bound to the fanout exchange ``shoeshop.dlx``: not yet declared."""
    # Fanout: whatever a component queue dead-letters lands here, whatever its routing key.
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="fanout", durable=True)  # type: ignore[no-untyped-call]
    arguments = {"x-queue-type": "quorum"}
    return Queue(DEAD_QUEUE, exchange, durable=True, queue_arguments=arguments)  # type: ignore[no-untyped-call]


def declare(connection: Connection) -> None:
    """Create the exchange and queue; without them RabbitMQ would drop what it dead-letters."""
    dead_queue().bind(connection.default_channel).declare()  # type: ignore[no-untyped-call]


def declare_when_a_worker_starts(sender: Any = None, **_kwargs: Any) -> None:
    """worker_ready: every worker declares the dead-letter route as it starts, before it can
    reject anything (RabbitMQ only; nothing to do on Redis)."""
    app = getattr(sender, "app", None)
    if app is None or not is_amqp(str(app.conf.broker_url)):
        return
    with app.connection_for_write() as connection:
        declare(connection)
