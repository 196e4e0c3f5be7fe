"""An order accepted while the broker is unreachable is published by the relay once it is back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery import Celery
from flask.testing import FlaskClient
from sqlalchemy import func, select

import shop.checkout
from tests.support.shop import order_body, wait_for
from workers.messaging import relay
from workers.messaging.database import engine_for
from workers.messaging.tables import outbox

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
    monkeypatch.setattr(shop.checkout, "celery_app", unreachable_broker)
    response = client.post("/api/orders", json=order_body(sku="CRT-002", size="39"))
    assert response.status_code == 202
    order_id = response.get_json()["id"]
    monkeypatch.undo()
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


def unpublished_events_of(order_id: str) -> int:
    query = select(func.count()).where(
        outbox.c.subject == order_id, outbox.c.published_at.is_(None)
    )
    with engine_for("shop").connect() as conn:
        return int(conn.execute(query).scalar_one())
