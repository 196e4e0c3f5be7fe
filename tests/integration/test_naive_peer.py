"""The bench's naive Celery shop works: real broker, real database, the gateway simulator, and
its chain's tasks run by a worker in this process on the naive shop's own queues."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.support.processes import ROOT
from tests.support.shop import DECLINED_CARD, order_body, wait_for
from workers.bench import naive_app, naive_store, naive_tables, naive_web


@pytest.fixture(scope="module")
def naive_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A fresh naive database and one worker process on the naive shop's four queues, as the
    bench's four processes would consume them. A process of its own, not a worker in this
    process: Celery's signals are global, and a second worker's shutdown here would run the
    suite's worker's handlers too."""
    naive_tables.prepare(naive_store.engine())
    log = tmp_path_factory.mktemp("naive-worker") / "worker.log"
    command = [
        *("celery", "-A", "workers.bench.naive_app", "worker", "--pool", "threads"),
        *("--concurrency", "4", "--loglevel", "INFO"),
        *("-Q", ",".join(naive_app.PREFIX + queue for queue in naive_app.QUEUES)),
        *("-n", f"naive-{uuid.uuid4().hex[:8]}@%h"),
    ]
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: worker.poll() is not None or b" ready." in log.read_bytes(), timeout_s=60)
        assert worker.poll() is None, log.read_text(errors="replace")[-3000:]
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


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
