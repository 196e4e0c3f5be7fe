"""Live order views: each change the shop commits, pushed to every web process at once.

The shop's worker (and the web itself, for a customer's cancellation) announces each change of an
order's view after its commit, on the broker the deployment already has: a fanout exchange, which
kombu gives on RabbitMQ as an exchange and on Redis as PUBLISH/SUBSCRIBE. Every web process holds
one subscription (shop.web.live) and hands each notice to the open streams of its order in
memory, so a change costs one read (here, by the worker) however many pages watch the order.

A notice is best effort and carries the whole view (event-carried state transfer): one lost while
the broker is away is made good by the subscriber, which, once reconnected, has every open stream
read its order once; a stream also ends after its lifetime and the browser resumes from its
Last-Event-ID with a fresh read.

Notice body (JSON): ``{"order_id": str, "view": <the view GET /api/orders/<id> answers>,
"committed_at": float}``, ``committed_at`` in seconds since the epoch, taken just after the commit
(what the watchers bench measures the push delay from).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery
from kombu.entity import Exchange
from sqlalchemy import Connection

from shop import readmodel
from workers.messaging.outbox import Outbox

log = logging.getLogger(__name__)

# Transient: a notice matters only to the streams open when it is sent.
EXCHANGE = Exchange("shoeshop.live", type="fanout", durable=False)  # type: ignore[no-untyped-call]
# A couple of quick retries, no more: past them a notice is late news, and what it carried reaches
# the streams by their resync after a reconnect or their next read.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.5}


def announce_after_commit(app: Celery, box: Outbox, conn: Connection, order_id: str) -> None:
    """Read the order's view in this transaction and announce it once the transaction commits."""
    view = readmodel.order_view(conn, order_id)
    if view is not None:
        box.after_commit(lambda: announce(app, view))


def announce(app: Celery, view: dict[str, Any]) -> None:
    """Publish the view on the live exchange. Raises kombu's connection errors when the broker
    cannot be reached after a couple of quick retries (the caller logs them: best effort)."""
    body = {"order_id": view["id"], "view": view, "committed_at": time.time()}
    with app.producer_or_acquire() as producer:
        producer.publish(
            body,
            exchange=EXCHANGE,
            routing_key="",
            serializer="json",
            delivery_mode=1,
            declare=[EXCHANGE],
            retry=True,
            retry_policy=PUBLISH_RETRY,
        )
