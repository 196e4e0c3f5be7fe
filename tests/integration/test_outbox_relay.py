"""An order accepted while the broker is unreachable is published by the relay once it is back."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from kombu.common import maybe_declare
from sqlalchemy import func, select, update

import shop.checkout
from tests.support.shop import order_body, wait_for
from workers.messaging.database import engine_for, transaction
from workers.messaging.publish_marks import PublishedMarks
from workers.messaging.publisher import Unroutable, send_to
from workers.messaging.tables import outbox
from workers.operations import relay

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def unreachable_broker() -> Iterator[Celery]:
    """A real Celery app pointed at a port where no broker listens."""
    app = Celery("unreachable", broker="redis://127.0.0.1:1/0")
    app.conf.broker_connection_timeout = 0.5
    yield app
    app.close()


def test_checkout_answers_202_while_the_broker_is_away_and_the_relay_publishes_later(
    client: FlaskClient,
    celery_app: Celery,
    unreachable_broker: Celery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order_id = placed_while_the_broker_is_away(client, unreachable_broker, monkeypatch, "39")
    assert unpublished_events_of(order_id) == 1  # order.placed waits in the outbox

    stop = threading.Event()
    sweeper = threading.Thread(
        target=relay.run, args=(celery_app, stop), kwargs={"grace": timedelta(0)}
    )
    sweeper.start()
    try:
        order = wait_for(
            lambda: (
                (o := client.get(f"/api/orders/{order_id}").get_json())["status"] == "SHIPPED" and o
            )
        )
    finally:
        stop.set()
        sweeper.join(timeout=10)
    assert order["shipment"]["tracking_number"]
    assert unpublished_events_of(order_id) == 0


BACKLOG = 12


def test_two_relays_at_once_send_each_waiting_event_once(
    client: FlaskClient,
    celery_app: Celery,
    unreachable_broker: Celery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a backlog of order.placed events left in the outbox while the broker was away
    order_ids = [
        placed_while_the_broker_is_away(client, unreachable_broker, monkeypatch, str(38 + n % 6))
        for n in range(BACKLOG)
    ]
    assert sum(unpublished_events_of(order_id) for order_id in order_ids) == BACKLOG
    # When two relays (connections of their own) sweep the shop's outbox at once, in small
    # batches so that they take turns
    monkeypatch.setattr(relay, "BATCH", 2)
    start = threading.Barrier(2)
    sent: list[list[int]] = [[], []]

    def sweep(index: int) -> None:
        start.wait()
        while n := relay.relay_once(celery_app, "shop", grace=timedelta(0)):
            sent[index].append(n)

    sweepers = [threading.Thread(target=sweep, args=(index,)) for index in (0, 1)]
    for sweeper in sweepers:
        sweeper.start()
    for sweeper in sweepers:
        sweeper.join(timeout=60)
    # Then each event went out once (a row one relay holds the other skips, or finds marked
    # once it gets its turn), and every order ships
    assert sum(sent[0]) + sum(sent[1]) == BACKLOG, sent
    assert sum(unpublished_events_of(order_id) for order_id in order_ids) == 0
    for order_id in order_ids:
        wait_for(
            lambda order_id=order_id: (
                client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED"
            ),
            timeout_s=60,
        )


def placed_while_the_broker_is_away(
    client: FlaskClient, unreachable: Celery, monkeypatch: pytest.MonkeyPatch, size: str
) -> str:
    """An order checked out while the shop's publisher cannot reach a broker: its order.placed
    stays in the outbox, for the relay. Returns its id."""
    monkeypatch.setattr(shop.checkout, "celery_app", unreachable)
    response = client.post("/api/orders", json=order_body(sku="CRT-002", size=size))
    assert response.status_code == 202
    monkeypatch.undo()
    return str(response.get_json()["id"])


def unpublished_events_of(order_id: str) -> int:
    query = select(func.count()).where(
        outbox.c.subject == order_id, outbox.c.published_at.is_(None)
    )
    with engine_for("shop").connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_a_published_event_has_its_row_marked_soon_after_without_a_second_transaction_inline(
    client: FlaskClient,
) -> None:
    response = client.post("/api/orders", json=order_body(sku="CRT-002", size="40"))
    assert response.status_code == 202
    order_id = response.get_json()["id"]
    # The process's flusher marks it in the background, well inside the relay's grace period.
    assert wait_for(
        lambda: unpublished_events_of(order_id) == 0, timeout_s=relay.GRACE.total_seconds()
    )


def test_marks_noted_in_several_units_of_work_are_written_in_one_flush(
    client: FlaskClient, celery_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Accepted while the broker is away: the rows wait in the outbox, unmarked.
    monkeypatch.setattr(shop.checkout, "celery_app", Celery("away", broker="redis://127.0.0.1:1/0"))
    ids = []
    for size in ("41", "42"):
        response = client.post("/api/orders", json=order_body(sku="CRT-002", size=size))
        ids.append(response.get_json()["id"])
    monkeypatch.undo()
    event_ids = placed_event_ids(ids)
    pending = PublishedMarks(interval_s=60)  # its own flusher stays out of the way

    for event_id in event_ids:
        pending.add("shop", [event_id])
    assert pending.flush() == 2
    assert [unpublished_events_of(order_id) for order_id in ids] == [0, 0]
    assert pending.flush() == 0  # nothing noted since

    # These two never reached a broker: hand them to the relay so their orders go on.
    with transaction("shop") as conn:
        conn.execute(update(outbox).where(outbox.c.id.in_(event_ids)).values(published_at=None))
    assert relay.relay_once(celery_app, "shop", grace=timedelta(0)) >= 2


def placed_event_ids(order_ids: list[str]) -> list[str]:
    query = select(outbox.c.id).where(outbox.c.subject.in_(order_ids))
    with engine_for("shop").connect() as conn:
        return [str(row.id) for row in conn.execute(query)]


def test_an_event_no_queue_takes_stays_in_the_outbox_until_its_queue_is_bound_again(
    client: FlaskClient,
    celery_app: Celery,
    unreachable_broker: Celery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A binding deleted on RabbitMQ (an operator's slip, a policy): the broker returns the
    # mandatory publish, so it is not counted as sent, and the next send declares the queue's
    # binding again: the relay then delivers the order with nothing lost.
    order_id = placed_while_the_broker_is_away(client, unreachable_broker, monkeypatch, "41")
    with engine_for("shop").connect() as conn:
        placed = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).scalar()

    with celery_app.producer_or_acquire() as producer:
        if producer.connection.transport.driver_type != "amqp":
            pytest.skip("Redis pushes each message to its queue's list by name: no binding to lose")
        orders_queue = celery_app.amqp.queues["orders"]
        maybe_declare(orders_queue, producer.channel)  # declared on this connection, as in use
        # Both of the queue's bindings: its own, and Celery's "#.orders" for delayed retries
        # (a topic pattern that matches "orders" too).
        for key in ("orders", "#.orders"):
            producer.channel.queue_unbind(queue="orders", exchange="shoeshop", routing_key=key)
        with pytest.raises(Unroutable, match="no queue is bound to routing key 'orders'"):
            send_to(celery_app, "orders.on_order_placed", placed, producer=producer)
        # Declared again, both bindings (Celery's retries come back through "#.orders").
        for key in ("orders", "#.orders"):
            assert bound(producer.channel, "orders", key), key
    assert unpublished_events_of(order_id) == 1

    stop = threading.Event()
    sweeper = threading.Thread(
        target=relay.run, args=(celery_app, stop), kwargs={"grace": timedelta(0)}
    )
    sweeper.start()
    try:
        wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    finally:
        stop.set()
        sweeper.join(timeout=10)
    assert unpublished_events_of(order_id) == 0


def bound(channel: Any, queue: str, routing_key: str) -> bool:
    """Whether RabbitMQ binds ``queue`` to the shoeshop exchange with ``routing_key``."""
    vhost = channel.connection.client.virtual_host
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_bindings",
            "-p",
            vhost,
            "--no-table-headers",
            "source_name",
            "destination_name",
            "routing_key",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return ["shoeshop", queue, routing_key] in (line.split("\t") for line in listed.splitlines())
