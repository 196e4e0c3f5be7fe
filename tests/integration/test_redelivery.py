"""An event the broker lost after it was published reaches the subscriber that missed it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from celery import Celery
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.support.integration import published_at
from tests.support.shop import order_body, wait_for
from workers.messaging import deadletters
from workers.messaging.contracts import OrderStatusChanged, PaymentDeclined, new_event
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.tables import inbox, outbox
from workers.operations import dlq, redelivery
from workers.operations.redelivery import redeliver_unapplied, unapplied

pytestmark = pytest.mark.usefixtures("worker")
STALL = timedelta(seconds=60)


def applied(event_id: str) -> int:
    query = select(func.count()).select_from(inbox).where(inbox.c.event_id == event_id)
    with engine_for("orders").connect() as conn:
        return int(conn.execute(query).scalar_one())


def lost_decline(order_id: str, payment_id: str) -> Envelope:
    """A payment.declined for an order that has shipped: orders records it and ignores it."""
    declined = PaymentDeclined(order_id=order_id, payment_id=payment_id, reason="card_declined")
    return new_event(declined, source="/payments", subject=order_id)


def published_two_minutes_ago(events: list[Envelope]) -> None:
    """In payments' outbox as published two minutes ago: what a message the broker lost leaves."""
    published_at("payments", events, utcnow() - timedelta(minutes=2))


def test_a_published_event_no_subscriber_applied_is_sent_again_once(
    client: FlaskClient, celery_app: Celery
) -> None:
    response = client.post("/api/orders", json=order_body(sku="BOT-001", size="40"))
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    # Given payments published an event two minutes ago that the broker then lost
    lost = lost_decline(order_id, str(uuid.uuid4()))
    published_two_minutes_ago([lost])
    assert applied(lost.id) == 0

    # When the sweep compares the outboxes with the inboxes
    sent = redeliver_unapplied(celery_app, utcnow(), STALL)

    # Then the subscriber gets it and applies it, and the next sweep has nothing to send
    assert sent >= 1  # this one, and any other event the broker lost in this session
    wait_for(lambda: applied(lost.id) == 1)
    # Once every re-sent event is applied (others may still be on their way), nothing is left.
    wait_for(lambda: not unapplied(utcnow(), STALL))
    assert redeliver_unapplied(celery_app, utcnow(), STALL) == 0
    assert client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED"


def test_a_window_larger_than_one_chunk_is_swept_chunk_by_chunk(
    client: FlaskClient, celery_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = client.post("/api/orders", json=order_body(sku="BOT-001", size="41"))
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    # Given five lost events, read two at a time
    monkeypatch.setattr(redelivery, "CHUNK", 2)
    lost = [lost_decline(order_id, str(uuid.uuid4())) for _ in range(5)]
    published_two_minutes_ago(lost)

    # When the sweep runs, every one of them is sent again and applied
    assert redeliver_unapplied(celery_app, utcnow(), STALL) >= len(lost)
    for event in lost:
        wait_for(lambda event_id=event.id: applied(event_id) == 1)


def test_events_younger_than_the_stall_are_left_to_their_first_delivery(
    celery_app: Celery,
) -> None:
    assert redeliver_unapplied(celery_app, utcnow(), timedelta(days=365)) == 0


@pytest.mark.parametrize("fate", ["parked", "discarded", "replayed"])
def test_an_event_with_a_dead_letter_is_the_operators_not_the_sweeps(
    client: FlaskClient, celery_app: Celery, fate: str
) -> None:
    # A discarded letter must not come back, a replayed one not arrive twice, a parked one wait.
    lost = lost_decline(str(uuid.uuid4()), str(uuid.uuid4()))
    published_two_minutes_ago([lost])
    letter = deadletters.park("orders.on_payment_declined", lost.to_dict(), RuntimeError("x"), 1)
    if fate == "discarded":
        dlq.discard(letter)
    elif fate == "replayed":
        dlq.replay(celery_app, letter)

    assert (lost.id, "orders.on_payment_declined") not in unapplied(utcnow(), STALL)


def lag_of(client: FlaskClient, queue: str) -> dict[str, float]:
    """The queue's subscriber-lag samples of one scrape, by metric name."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("shoeshop_subscriber_") and sample.labels.get("queue") == queue
    }


def test_a_sweep_records_how_far_each_queue_is_behind_and_metrics_report_it(
    client: FlaskClient, celery_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An event the broker lost two minutes ago: orders' queue is two minutes behind until the
    # sweep's re-send is applied, then 0; the other queues are 0 throughout.
    response = client.post("/api/orders", json=order_body(sku="BOT-001", size="42"))
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    monkeypatch.setattr(redelivery, "_resend", lambda *_args: None)  # lost again, for now
    lost = lost_decline(order_id, str(uuid.uuid4()))
    published_two_minutes_ago([lost])

    redeliver_unapplied(celery_app, utcnow(), STALL)

    behind = lag_of(client, "orders")
    assert 110 <= behind["shoeshop_subscriber_oldest_unapplied_age_seconds"] <= 180, behind
    assert 0 <= behind["shoeshop_subscriber_lag_checked_age_seconds"] < 30, behind
    assert lag_of(client, "notifications")["shoeshop_subscriber_oldest_unapplied_age_seconds"] == 0

    monkeypatch.undo()
    redeliver_unapplied(celery_app, utcnow(), STALL)  # re-sent now
    wait_for(lambda: applied(lost.id) == 1)
    wait_for(lambda: not unapplied(utcnow(), STALL))  # others re-sent meanwhile, too
    redeliver_unapplied(celery_app, utcnow(), STALL)
    assert lag_of(client, "orders")["shoeshop_subscriber_oldest_unapplied_age_seconds"] == 0


def test_a_subscriber_narrowed_by_its_interest_is_owed_only_the_events_it_wants(
    client: FlaskClient,
) -> None:
    notify, shop = "notifications.on_order_status_changed", "shop.on_order_status_changed"
    response = client.post("/api/orders", json=order_body(sku="BOT-001", size="42"))
    order_id = response.get_json()["id"]
    wait_for(lambda: client.get(f"/api/orders/{order_id}").get_json()["status"] == "SHIPPED")
    # The order's status changes reach notifications only when it has a mail to write
    with engine_for("orders").connect() as conn:
        notices = conn.execute(
            select(outbox.c.id, outbox.c.event).where(
                outbox.c.subject == order_id, outbox.c.type == OrderStatusChanged.TYPE
            )
        ).all()

    def notified() -> dict[str, bool]:
        heard = select(inbox.c.event_id).where(inbox.c.consumer == notify)
        with engine_for("notifications").connect() as conn:
            ids = {row.event_id for row in conn.execute(heard)}
        return {row.event["data"]["status"]: row.id in ids for row in notices}

    expected = {"PAYMENT_PENDING": False, "PAID": False, "SHIPPED": True}
    assert wait_for(lambda: notified() == expected)

    # Given orders published status changes two minutes ago that the broker then lost: PAID now
    # and in its first version (notifications writes no mail for either), and SHIPPED
    paid, shipped = (
        new_event(
            OrderStatusChanged(order_id=order_id, status=status, reason=None),
            source="/orders",
            subject=order_id,
        )
        for status in ("PAID", "SHIPPED")
    )
    paid_v1 = Envelope(
        type="shoeshop.order.status_changed.v1",
        source="/orders",
        subject=order_id,
        data={"order_id": order_id, "status": "PAID", "reason": None},
    )
    lost = {paid.id, paid_v1.id, shipped.id}
    published_at("orders", [paid, paid_v1, shipped], utcnow() - timedelta(minutes=2))

    # When the sweep looks for what each subscriber has not applied
    owed = {key for key in unapplied(utcnow(), STALL) if key[0] in lost}

    # Then the shop is owed all three, notifications the SHIPPED one only
    assert owed == {
        (paid.id, shop),
        (paid_v1.id, shop),
        (shipped.id, shop),
        (shipped.id, notify),
    }
