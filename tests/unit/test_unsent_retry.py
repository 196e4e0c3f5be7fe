"""A retry that cannot be published gives its message back to the queue (issue #18's
`worker-host-partitioned`): Celery's own Task.retry would reject it for good, and the broker
would dead-letter an event nothing is wrong with, a charge already made waiting on an operator.

The broker here is a real socket that refuses the connection (nothing listens on port 1), as a
worker host cut off from its broker sees it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from celery import Celery
from celery.exceptions import Reject

from config.settings import get_settings
from workers.messaging.consumer import Subscriber
from workers.messaging.contracts import ShipmentCancelled, new_event
from workers.messaging.envelope import Envelope

ORDER = "3f1c7c1e-5d8e-4a53-9a0e-0b8f1a0c9d11"


class Cancelling(Subscriber):
    """A subscriber as register_subscribers makes one (its handler is never reached here)."""

    name = "orders.on_shipment_cancelled"
    component = "orders"
    handler = staticmethod(lambda conn, event, outbox: None)


def refused_port() -> int:
    """A local port nothing listens on: bound, never listened, closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SHOESHOP_RETRY_BASE_DELAY", "0.2")
    monkeypatch.setenv("SHOESHOP_RETRY_MAX_DELAY", "0.4")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def event() -> Envelope:
    return new_event(ShipmentCancelled(order_id=ORDER), source="/shipping", subject=ORDER)


def fail_transiently(task: Subscriber) -> None:
    """One delivery's transient fault, as Subscriber.run meets it."""
    body = event().to_dict()
    logger = logging.LoggerAdapter(logging.getLogger("test"), {})
    task.push_request(
        retries=0, headers={}, id="delivery-1", delivery_info={}, called_directly=False
    )
    try:
        task.retry_or_park(body, ConnectionError("the database went away"), 1, logger)
    finally:
        task.pop_request()


def test_a_retry_the_broker_cannot_take_puts_the_message_back_after_a_pause() -> None:
    app = Celery(
        "unsent-retry", broker=f"redis://127.0.0.1:{refused_port()}/0", set_as_current=False
    )
    app.conf.broker_connection_timeout = 1
    task = Cancelling()
    type(task).bind(app)

    started = time.monotonic()
    with pytest.raises(Reject) as raised:
        fail_transiently(task)

    assert raised.value.requeue is True  # Celery's own Reject would say False: dead-lettered
    assert isinstance(raised.value.__cause__, ConnectionError)
    # The backoff's pause (0.1 to 0.4 s here) before the message goes back.
    assert time.monotonic() - started >= 0.1
