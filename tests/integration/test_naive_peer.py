"""The bench's naive Celery shop works: real broker, real database, the gateway simulator, and
its chain's tasks run by a worker in this process on the naive shop's own queues."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import celery
import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.shop import DECLINED_CARD, order_body, wait_for
from workers.bench import naive_app, naive_store, naive_tables, naive_web


@pytest.fixture(scope="module")
def naive_worker() -> Iterator[None]:
    """A fresh naive database and one worker on the naive shop's four queues, as the bench's
    four processes would consume them."""
    from celery.contrib.testing.worker import start_worker

    naive_tables.prepare(naive_store.engine())
    previous = celery.current_app._get_current_object()  # the embedded worker makes its app current
    try:
        with start_worker(
            naive_app.app,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            queues=[naive_app.PREFIX + queue for queue in naive_app.QUEUES],
            # A node name of its own: the suite's worker in this process has the default one,
            # and on RabbitMQ both would claim the same exclusive pidbox queue.
            hostname=f"naive-{uuid.uuid4().hex[:8]}@localhost",
            shutdown_timeout=30,
        ):
            yield
    finally:
        previous.set_current()
        previous.set_default()


@pytest.fixture()
def naive_client(naive_worker: None) -> FlaskClient:
    return naive_web.create_app().test_client()


def place(client: FlaskClient, body: dict[str, Any]) -> str:
    response = client.post("/api/orders", json=body)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def settled(order_id: str, status: str) -> Any:
    def probe() -> Any:
        with naive_store.engine().connect() as conn:
            return conn.execute(
                select(naive_tables.orders).where(
                    naive_tables.orders.c.id == order_id, naive_tables.orders.c.status == status
                )
            ).first()

    return wait_for(probe, timeout_s=30)


def stock_row(sku: str, size: str) -> Any:
    with naive_store.engine().connect() as conn:
        return conn.execute(
            select(naive_tables.stock).where(
                naive_tables.stock.c.sku == sku, naive_tables.stock.c.size == size
            )
        ).one()


def charges_for(gateway_url: str, order_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{gateway_url}/v1/charges", params={"order_id": order_id})
    return list(response.json())


def test_an_order_placed_at_the_naive_shop_ships_once_charged_with_its_stock_sold(
    naive_client: FlaskClient, gateway_url: str
) -> None:
    before = stock_row("TRL-002", "41")

    order_id = place(naive_client, order_body(sku="TRL-002", size="41", quantity=2))

    order = settled(order_id, naive_tables.SHIPPED)
    assert order.placed_at < order.shipped_at
    assert order.card_last4 == "4242" and "4242424242424242" not in order.card_token
    after = stock_row("TRL-002", "41")
    assert (after.available, after.reserved, after.sold) == (before.available - 2, 0, 2)
    charges = charges_for(gateway_url, order_id)
    assert [(c["amount_cents"], c["status"]) for c in charges] == [(2 * 13900, "succeeded")]
    with naive_store.engine().connect() as conn:
        shipment = conn.execute(
            select(naive_tables.shipments).where(naive_tables.shipments.c.order_id == order_id)
        ).one()
    assert shipment.carrier == "PostNL" and shipment.tracking_number


def test_a_declined_card_cancels_the_naive_order_and_puts_its_stock_back(
    naive_client: FlaskClient,
) -> None:
    before = stock_row("CAS-001", "39")

    order_id = place(naive_client, order_body(card=DECLINED_CARD, sku="CAS-001", size="39"))

    order = settled(order_id, naive_tables.CANCELLED)
    assert order.reason == "payment_declined"
    after = stock_row("CAS-001", "39")
    assert (after.available, after.reserved, after.sold) == (before.available, 0, 0)
