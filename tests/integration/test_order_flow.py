"""An order's whole saga through the real broker, databases, gateway and an in-process worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from celery import Celery
from celery.signals import task_postrun
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.support.shop import DECLINED_CARD, FLAKY_CARD, order_body, wait_for
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.publisher import publish, task_id_for
from workers.messaging.tables import inbox, outbox
from workers.orders.store import order_events

pytestmark = pytest.mark.usefixtures("worker")


def stock_of(client: FlaskClient, sku: str, size: str) -> int:
    products = client.get("/api/products").get_json()
    product = next(p for p in products if p["sku"] == sku)
    return int(next(s["available"] for s in product["sizes"] if s["size"] == size))


def place(client: FlaskClient, body: dict[str, Any], **headers: str) -> str:
    response = client.post("/api/orders", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def final_state(client: FlaskClient, order_id: str) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        order = client.get(f"/api/orders/{order_id}").get_json()
        return order if order["status"] in ("SHIPPED", "CANCELLED") else None

    return wait_for(settled, timeout_s=30)


def charges_for(gateway_url: str, order_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{gateway_url}/v1/charges", params={"order_id": order_id})
    return list(response.json())


def test_an_order_placed_through_the_shop_ships(client: FlaskClient, gateway_url: str) -> None:
    order_id = place(client, order_body(sku="TRL-001", size="42", quantity=2))

    order = final_state(client, order_id)

    assert order["status"] == "SHIPPED"
    assert order["shipment"]["carrier"] == "PostNL"
    assert order["shipment"]["tracking_number"]
    assert order["payment"] == {"status": "succeeded", "brand": "visa", "last4": "4242"}
    assert [c["amount_cents"] for c in charges_for(gateway_url, order_id)] == [2 * 12900]


def test_shipping_counts_the_reserved_pairs_as_sold(client: FlaskClient) -> None:
    before = stock_of(client, "TRL-002", "40")

    final_state(client, place(client, order_body(sku="TRL-002", size="40", quantity=3)))

    assert stock_of(client, "TRL-002", "40") == before - 3


def test_a_declined_card_cancels_the_order_and_puts_the_stock_back(
    client: FlaskClient, gateway_url: str
) -> None:
    before = stock_of(client, "CAS-001", "41")
    order_id = place(client, order_body(card=DECLINED_CARD, sku="CAS-001", size="41", quantity=2))
    assert stock_of(client, "CAS-001", "41") == before - 2

    order = final_state(client, order_id)

    assert order["status"] == "CANCELLED"
    assert order["reason"] == "payment_declined"
    assert order["payment"]["status"] == "declined"
    assert stock_of(client, "CAS-001", "41") == before
    assert charges_for(gateway_url, order_id) == []


def test_a_card_that_fails_transiently_twice_is_charged_once(
    client: FlaskClient, gateway_url: str
) -> None:
    order_id = place(client, order_body(card=FLAKY_CARD, sku="RUN-002"))

    order = final_state(client, order_id)

    assert order["status"] == "SHIPPED"
    assert len(charges_for(gateway_url, order_id)) == 1


def test_the_same_order_placed_event_delivered_twice_gives_one_order_and_one_charge(
    client: FlaskClient, gateway_url: str, celery_app: Celery
) -> None:
    order_id = place(client, order_body(sku="BOT-001"))
    final_state(client, order_id)
    placed = the_order_placed_event(order_id)

    with task_runs() as runs:
        publish(celery_app, [placed])  # the broker hands the same event over a second time
        task_id = task_id_for(placed, "orders.on_order_placed")
        wait_for(lambda: task_id in runs)

    assert len(charges_for(gateway_url, order_id)) == 1
    assert (
        stream_length(order_id) == 5
    )  # placed, payment requested, paid, shipment requested, shipped
    assert inbox_rows("orders", placed.id) == 1


def the_order_placed_event(order_id: str) -> Envelope:
    with engine_for("shop").connect() as conn:
        row = conn.execute(select(outbox.c.event).where(outbox.c.subject == order_id)).one()
    return Envelope.from_dict(row.event)


def stream_length(order_id: str) -> int:
    query = select(func.count()).where(order_events.c.stream_id == order_id)
    with engine_for("orders").connect() as conn:
        return int(conn.execute(query).scalar_one())


def inbox_rows(component: str, event_id: str) -> int:
    query = select(func.count()).select_from(inbox).where(inbox.c.event_id == event_id)
    with engine_for(component).connect() as conn:
        return int(conn.execute(query).scalar_one())


@contextmanager
def task_runs() -> Iterator[list[str]]:
    """The ids of the tasks the worker finishes while the block runs (duplicates included)."""
    finished: list[str] = []

    def record(sender: Any = None, task_id: str = "", **_: Any) -> None:
        finished.append(task_id)

    task_postrun.connect(record, weak=False)
    try:
        yield finished
    finally:
        task_postrun.disconnect(record)
