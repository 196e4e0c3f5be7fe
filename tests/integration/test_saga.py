"""Every path of the order saga end to end: cancellations, refunds, the payment timeout, replay."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from config.settings import get_settings
from shop import readmodel
from shop.tables import orders as order_view_table
from tests.support.integration import charges, order, place, statements_run, stock_of
from tests.support.shop import FAILING_CARD, FLAKY_CARD, wait_for
from workers.messaging.contracts import PaymentDeclined, new_event, wire_type
from workers.messaging.database import engine_for, transaction
from workers.messaging.envelope import utcnow
from workers.messaging.publisher import publish
from workers.operations import dlq
from workers.operations.replay_cli import replay, report
from workers.orders import projections, store, timer

pytestmark = pytest.mark.usefixtures("worker")


def reaches(
    client: FlaskClient, order_id: str, status: str, timeout_s: float = 30
) -> dict[str, Any]:
    return wait_for(lambda: (o := order(client, order_id))["status"] == status and o, timeout_s)


def test_cancelling_before_payment_cancels_and_releases_the_stock(
    client: FlaskClient, gateway_url: str
) -> None:
    before = stock_of(client, "SAN-001", "39")
    order_id = place(client, card=FAILING_CARD, sku="SAN-001", size="39", quantity=2)
    reaches(client, order_id, "PAYMENT_PENDING")

    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202

    cancelled = reaches(client, order_id, "CANCELLED")
    assert cancelled["reason"] == "customer_request"
    assert cancelled["payment"]["status"] == "cancelled"  # nothing was charged
    assert stock_of(client, "SAN-001", "39") == before
    assert charges(gateway_url, order_id) == []


def test_cancelling_a_paid_order_before_it_ships_refunds_it_once(
    client: FlaskClient, gateway_url: str, setting: Any
) -> None:
    setting("SHOESHOP_PACKING_DELAY", "600")  # the parcel waits in packing, the beat is off
    before = stock_of(client, "SAN-002", "40")
    order_id = place(client, sku="SAN-002", size="40")
    reaches(client, order_id, "PAID")

    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202

    cancelled = reaches(client, order_id, "CANCELLED")
    assert cancelled["reason"] == "customer_request"
    assert [c["status"] for c in charges(gateway_url, order_id)] == ["refunded"]
    # The customer reads the payment as refunded once orders names the refund (issue #17).
    assert wait_for(lambda: order(client, order_id)["payment"]["status"] == "refunded")
    assert stock_of(client, "SAN-002", "40") == before
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 409


def test_a_shipped_order_cannot_be_cancelled(client: FlaskClient) -> None:
    order_id = place(client, sku="CRT-001", size="43")
    reaches(client, order_id, "SHIPPED")

    response = client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 409
    assert "shipped" in response.get_json()["error"]["message"]


def test_cancelling_an_unknown_order_is_a_404(client: FlaskClient) -> None:
    assert client.post("/api/orders/no-such-order/cancel").status_code == 404


def test_an_unpaid_order_is_cancelled_when_its_payment_deadline_passes(
    client: FlaskClient, celery_app: Celery
) -> None:
    before = stock_of(client, "HIK-001", "41")
    order_id = place(client, card=FAILING_CARD, sku="HIK-001", size="41")
    reaches(client, order_id, "PAYMENT_PENDING")

    timer.sweep(celery_app, utcnow() + timedelta(seconds=get_settings().payment_timeout_s + 1))

    cancelled = reaches(client, order_id, "CANCELLED")
    assert cancelled["reason"] == "payment_timeout"
    assert stock_of(client, "HIK-001", "41") == before


def test_the_deadline_is_not_reached_early(client: FlaskClient, celery_app: Celery) -> None:
    order_id = place(client, card=FAILING_CARD, sku="HIK-001", size="42")
    reaches(client, order_id, "PAYMENT_PENDING")

    assert timer.sweep(celery_app, utcnow() + timedelta(seconds=60)) == 0


def test_a_payment_that_succeeds_after_the_timeout_is_refunded(
    client: FlaskClient, celery_app: Celery, gateway_url: str, setting: Any
) -> None:
    # The flaky card pays on its third try, later. The ceiling first: a base above it is refused.
    setting("SHOESHOP_RETRY_MAX_DELAY", "3")
    setting("SHOESHOP_RETRY_BASE_DELAY", "1.5")
    order_id = place(client, card=FLAKY_CARD, sku="KID-001", size="38")
    reaches(client, order_id, "PAYMENT_PENDING")
    timer.sweep(celery_app, utcnow() + timedelta(seconds=get_settings().payment_timeout_s + 1))
    reaches(client, order_id, "CANCELLED")

    refunded = wait_for(
        lambda: [c["status"] for c in charges(gateway_url, order_id)] == ["refunded"], 30
    )

    assert refunded
    assert order(client, order_id)["reason"] == "payment_timeout"
    # orders records the late payment, the refund and its outcome without a status change;
    # the shop hears of each step all the same.
    heard = wait_for(
        lambda: (
            {
                wire_type(name)
                for name in ("payment.succeeded", "refund.requested", "payment.refunded")
            }
            <= {entry["type"] for entry in order(client, order_id)["timeline"]}
        )
    )
    assert heard
    assert order(client, order_id)["status"] == "CANCELLED"


def test_a_stale_event_is_recorded_and_ignored_not_parked(
    client: FlaskClient, celery_app: Celery
) -> None:
    order_id = place(client, sku="CAS-002", size="44")
    reaches(client, order_id, "SHIPPED")
    an_old_one = str(uuid.uuid4())
    declined = PaymentDeclined(order_id=order_id, payment_id=an_old_one, reason="card_declined")
    stale = new_event(declined, source="/payments", subject=order_id)

    publish(celery_app, [stale])

    def ignored_in_stream() -> bool:
        with engine_for("orders").connect() as conn:
            return any(type(e).__name__ == "TransitionIgnored" for e in store.load(conn, order_id))

    wait_for(ignored_in_stream)
    assert order(client, order_id)["status"] == "SHIPPED"


@contextmanager
def statements_per_database() -> Iterator[Counter[str]]:
    """Counts the SQL statements each component's database runs meanwhile for this thread (the
    Flask test client's requests run in it; the in-process worker's threads are left out)."""
    seen: Counter[str] = Counter()
    here = threading.get_ident()

    def heard(component: str, _sql: str, _params: Any) -> None:
        if threading.get_ident() == here:
            seen[component] += 1

    with statements_run(heard):
        yield seen


def test_the_timeline_shows_every_component_from_the_shops_own_database(
    client: FlaskClient,
) -> None:
    order_id = place(client, card=FLAKY_CARD, sku="BOT-002", size="45")
    reaches(client, order_id, "SHIPPED")

    with statements_per_database() as seen:
        shipped = order(client, order_id)
        page = client.get(f"/orders/{order_id}")

    assert page.status_code == 200
    assert set(seen) == {"shop"}, seen  # the customer's reads never leave the shop's database
    timeline = shipped["timeline"]
    # orders names the events each of its steps was about: what payments and shipping emitted
    # reaches the shop's timeline through orders' notices, in time order, each once.
    assert [(entry["type"], entry["source"]) for entry in timeline] == [
        (wire_type("order.placed"), "/shop"),
        (wire_type("payment.requested"), "/orders"),
        (wire_type("order.status_changed"), "/orders"),
        (wire_type("payment.succeeded"), "/payments"),
        (wire_type("shipment.requested"), "/orders"),
        (wire_type("order.status_changed"), "/orders"),
        (wire_type("shipment.dispatched"), "/shipping"),
        (wire_type("order.status_changed"), "/orders"),
    ]
    assert len({entry["id"] for entry in timeline}) == len(timeline)
    assert timeline[0]["since_placed_s"] == 0
    offsets = [entry["since_placed_s"] for entry in timeline]
    assert offsets == sorted(offsets) and offsets[-1] > 0
    assert "Payment succeeded" in page.get_data(as_text=True)


def test_every_projection_rebuilt_from_the_log_equals_the_live_one(client: FlaskClient) -> None:
    order_ids = [place(client, sku="KID-001", size=size) for size in ("40", "41")]
    order_ids.append(place(client, sku="KID-001", size="42", card="4000000000000002"))
    for order_id in order_ids:
        wait_for(lambda oid=order_id: order(client, oid)["status"] in ("SHIPPED", "CANCELLED"))

    live = snapshots(order_ids)
    result = CliRunner().invoke(replay, [])
    assert result.exit_code == 0, result.output
    assert "order_status: rebuilt" in result.output

    assert snapshots(order_ids) == live


def snapshots(order_ids: list[str]) -> dict[str, Any]:
    with engine_for("shop").connect() as conn:
        view = [row for row in readmodel.snapshot(conn) if row[0] in order_ids]
    with engine_for("orders").connect() as conn:
        listed = [row for row in projections.snapshot(conn, "order_list") if row[0] in order_ids]
        sold = [row for row in projections.snapshot(conn, "sales") if row[0] == "KID-001"]
    assert len(view) == len(listed) == 3
    return {"order_status": view, "order_list": listed, "sales": sold}


def test_replaying_history_to_a_subscriber_applies_nothing_twice(
    client: FlaskClient, celery_app: Celery
) -> None:
    order_id = place(client, sku="TRL-002", size="45")
    reaches(client, order_id, "SHIPPED")
    with engine_for("shop").connect() as conn:
        before = conn.execute(
            select(order_view_table).where(order_view_table.c.id == order_id)
        ).one()

    result = CliRunner().invoke(replay, ["--to", "shop.on_order_status_changed"])

    assert result.exit_code == 0, result.output
    assert "re-sent" in result.output
    with engine_for("shop").connect() as conn:
        after = conn.execute(
            select(order_view_table).where(order_view_table.c.id == order_id)
        ).one()
    assert after == before


def test_replay_refuses_a_task_that_subscribes_to_nothing() -> None:
    result = CliRunner().invoke(replay, ["--to", "shop.no_such_task"])
    assert result.exit_code != 0
    assert "subscribes to no event" in result.output


def test_rebuilding_twice_gives_the_same_projection() -> None:
    with transaction("orders") as conn:
        projections.rebuild(conn)
        first = projections.snapshot(conn, "order_list")
        projections.rebuild(conn)
        assert projections.snapshot(conn, "order_list") == first


def test_the_payment_timer_is_a_database_row_while_the_order_waits(client: FlaskClient) -> None:
    waiting = place(client, card=FAILING_CARD, sku="RUN-002", size="38")
    paid = place(client, sku="RUN-002", size="39")
    reaches(client, waiting, "PAYMENT_PENDING")
    reaches(client, paid, "SHIPPED")

    with engine_for("orders").connect() as conn:
        timers = set(conn.execute(select(store.deadlines.c.order_id)).scalars())

    assert waiting in timers  # survives any worker restart: it is not an in-memory countdown
    assert paid not in timers  # cleared in the same transaction as the payment


def test_an_order_whose_payment_is_parked_says_so_on_its_tracking_page(client: FlaskClient) -> None:
    order_id = place(client, card=FAILING_CARD, sku="CAS-001", size="38")

    delayed = wait_for(lambda: order(client, order_id).get("delayed"), timeout_s=60)
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)

    assert delayed["stage"] == "payment"
    assert 'data-stage="payment"' in page
    assert "Your payment is delayed" in page


def test_a_parked_payment_replayed_moves_the_order_on_and_ends_its_wait(
    client: FlaskClient, celery_app: Celery, setting: Any
) -> None:
    # The flaky card pays on its third try: with one retry its payment is parked after two.
    setting("SHOESHOP_MAX_RETRIES", "1")
    order_id = place(client, card=FLAKY_CARD, sku="CAS-001", size="39")
    delayed = wait_for(lambda: order(client, order_id).get("delayed"), timeout_s=60)
    assert delayed["stage"] == "payment"
    [letter] = dlq.parked(subject=order_id)

    assert dlq.replay(celery_app, letter.id).outcome == "sent"

    reaches(client, order_id, "SHIPPED", 60)
    with engine_for("shop").connect() as conn:
        row = conn.execute(
            select(order_view_table.c.delayed_since, order_view_table.c.delayed_queue).where(
                order_view_table.c.id == order_id
            )
        ).one()
    assert tuple(row) == (None, None)  # cleared by orders' next notice, not only hidden


def test_the_sales_report_counts_shipped_pairs(client: FlaskClient) -> None:
    order_id = place(client, sku="TRL-001", size="38", quantity=3)
    reaches(client, order_id, "SHIPPED")

    result = CliRunner().invoke(report, ["sales"])
    listed = CliRunner().invoke(report, ["order_list", "--limit", "500"])

    assert result.exit_code == 0, result.output
    row = next(
        line.split("\t") for line in result.output.splitlines() if line.startswith("TRL-001\t38")
    )
    assert int(row[2]) >= 3
    assert order_id in listed.output
