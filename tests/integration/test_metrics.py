"""/metrics: what an operator graphs and alerts on, read from the real databases and broker."""

from __future__ import annotations

import uuid
from datetime import timedelta

from celery import Celery
from flask.testing import FlaskClient
from kombu import Connection, Exchange, Producer, Queue
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, insert

from config.settings import COMPONENTS, QUEUES
from shop.web.metrics import queue_depths
from tests.support.shop import order_body, wait_for
from workers.messaging import outbox
from workers.messaging.contracts import wire_type
from workers.messaging.envelope import utcnow
from workers.messaging.tables import kit_metadata
from workers.messaging.tables import outbox as outbox_table

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_report_every_component_queue_and_source(client: FlaskClient) -> None:
    samples = scrape(client)

    for component in COMPONENTS:
        assert ("shoeshop_outbox_backlog", (("component", component),)) in samples
        key = ("shoeshop_outbox_oldest_unpublished_age_seconds", (("component", component),))
        assert key in samples
    for queue in QUEUES:
        assert ("shoeshop_queue_depth", (("queue", queue),)) in samples
        assert ("shoeshop_dead_letters_parked", (("queue", queue),)) in samples
    for source in ("orders", "outbox", "dead_letters", "broker"):
        assert value(samples, "shoeshop_metrics_source_up", source=source) == 1
    assert ("shoeshop_orders_placed_total", ()) in samples


def test_an_order_counts_as_placed_times_its_checkout_and_counts_as_shipped(
    client: FlaskClient, worker: object
) -> None:
    before = scrape(client)

    response = client.post("/api/orders", json=order_body(sku="CAS-001", size="40"))
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    after = scrape(client)

    assert response.status_code == 202
    placed = "shoeshop_orders_placed_total"
    assert value(after, placed) >= value(before, placed) + 1
    shipped = "shoeshop_orders_shipped_total"
    assert value(after, shipped) >= value(before, shipped) + 1
    count = "shoeshop_checkout_duration_seconds_count"
    assert value(after, count, channel="api", status="202") >= (
        value(before, count, channel="api", status="202") + 1
    )


def test_a_declined_card_counts_as_cancelled_with_its_reason(
    client: FlaskClient, worker: object
) -> None:
    before = scrape(client)

    response = client.post(
        "/api/orders", json=order_body(card="4000000000000002", sku="CAS-001", size="41")
    )
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "CANCELLED")
    after = scrape(client)

    name = "shoeshop_orders_cancelled_total"
    assert value(after, name, reason="payment_declined") >= (
        value(before, name, reason="payment_declined") + 1
    )


def test_the_oldest_unpublished_event_gives_the_outbox_its_age() -> None:
    engine = create_engine("sqlite://")
    kit_metadata.create_all(engine)
    with engine.begin() as conn:
        assert outbox.oldest_unpublished_age(conn) == 0.0
        for age_s, published in ((90, False), (30, False), (600, True)):
            created = utcnow() - timedelta(seconds=age_s)
            conn.execute(
                insert(outbox_table).values(
                    id=str(uuid.uuid4()),
                    type=wire_type("order.placed"),
                    subject=str(uuid.uuid4()),
                    event={},
                    created_at=created,
                    published_at=created if published else None,
                )
            )

        age = outbox.oldest_unpublished_age(conn)
        backlog = outbox.backlog(conn)

    assert 90 <= age < 120
    assert backlog == 2


def test_queue_depth_counts_the_messages_waiting_on_the_broker(celery_app: Celery) -> None:
    name = f"shoeshop-depth-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    with Connection(celery_app.conf.broker_url) as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        try:
            producer = Producer(conn.default_channel)
            for index in range(3):
                producer.publish({"n": index}, exchange=queue.exchange, routing_key=name)

            depths = wait_for(
                lambda: found if (found := queue_depths(celery_app, [name]))[name] == 3 else None
            )
        finally:
            bound.delete()

    assert depths == {name: 3}


def test_a_queue_nobody_declared_has_nothing_waiting(celery_app: Celery) -> None:
    name = f"shoeshop-absent-{uuid.uuid4().hex[:8]}"

    assert queue_depths(celery_app, [name]) == {name: 0}
