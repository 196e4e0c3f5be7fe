"""Nothing hangs: every order ends, its stock released and the customer told why (issue #13).

Each path on the real worker, broker and databases. The deadlines are enforced by the timers'
sweeps, called here with the clock moved past them (the clock is the one fake allowed); the
faults are put past the edge on purpose: an order.placed broken by its producer (the shop's
_placed_event wrapped), one that reaches orders cut short (no JSON) while its intact copy waits
in the shop's outbox, a card that always fails, a parcel still packing, a refund of nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery
from flask.testing import FlaskClient
from sqlalchemy import select

from config.settings import get_settings
from shop import acceptance, checkout
from tests.support.integration import charges, order, place, publish_raw, stock_of
from tests.support.shop import FAILING_CARD, wait_for
from workers.messaging.contracts import OrderCancellationRequested, RefundRequested, new_event
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope, utcnow
from workers.messaging.publisher import publish
from workers.messaging.tables import outbox
from workers.operations import dlq
from workers.operations.relay import relay_once
from workers.orders import store, timer

pytestmark = pytest.mark.usefixtures("worker")


def ends(client: FlaskClient, order_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """The order once it is CANCELLED (within the deadline's sweep plus 60 s)."""
    return wait_for(
        lambda: (o := order(client, order_id))["status"] == "CANCELLED" and o, timeout_s
    )


def stream_of(order_id: str) -> list[str]:
    with engine_for("orders").connect() as conn:
        return [type(event).__name__ for event in store.load(conn, order_id)]


def broken_by_the_producer(
    monkeypatch: pytest.MonkeyPatch, breaks: Callable[[dict[str, Any]], None]
) -> None:
    """The shop's next order.placed carries data ``breaks`` changed after the contract's check:
    a producer's bug, past the edge."""
    made = checkout._placed_event

    def placed_event(*args: Any) -> Envelope:
        event = made(*args)
        data = {**event.data}
        breaks(data)
        return Envelope(**{**event.to_dict(), "data": data})

    monkeypatch.setattr(checkout, "_placed_event", placed_event)


def no_email(data: dict[str, Any]) -> None:
    data["customer"] = {**data["customer"], "email": "ada at example"}  # the contract: an @


def wrong_total(data: dict[str, Any]) -> None:
    data["total_cents"] += 1  # parses; breaks orders' rule that it is the sum of the items


@pytest.mark.parametrize(
    ("breaks", "size"), [(no_email, "38"), (wrong_total, "39")], ids=["contract", "invariant"]
)
def test_an_invalid_order_placed_ends_the_order_and_releases_its_stock(
    client: FlaskClient,
    gateway_url: str,
    monkeypatch: pytest.MonkeyPatch,
    breaks: Callable[[dict[str, Any]], None],
    size: str,
) -> None:
    before = stock_of(client, "SAN-002", size)
    broken_by_the_producer(monkeypatch, breaks)

    order_id = place(client, sku="SAN-002", size=size, quantity=2)

    cancelled = ends(client, order_id)
    assert cancelled["reason"] == "invalid_order"
    assert cancelled["reason_text"].startswith("We could not process this order")
    assert cancelled["delayed"] is None  # ended: it waits on nothing
    assert stock_of(client, "SAN-002", size) == before
    assert charges(gateway_url, order_id) == []
    assert stream_of(order_id) == ["OrderRejected"]  # orders never recorded it: only its end
    letters = dlq.parked(subject=order_id)
    [letter] = [letter for letter in letters if letter.queue == "orders"]
    assert (letter.task, letter.exception) == ("orders.on_order_placed", "InvalidEvent")
    # The mails of an order nobody could read cannot be written either: parked for operators,
    # and (OBSERVER_QUEUES) no delay for the order.
    assert {letter.queue for letter in letters} <= {"orders", "notifications"}
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "We could not process this order" in page


def test_an_order_whose_placement_orders_cannot_read_ends_at_its_acceptance_deadline_and_a_late_copy_is_ignored(  # noqa: E501
    client: FlaskClient, gateway_url: str, celery_app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The order.placed reaches orders cut short, no JSON: parked as raw text, with no order id
    # to be read from it. (Its intact copy stays in the shop's outbox: no relay runs here until
    # the test runs one.)
    monkeypatch.setattr(checkout, "publish_committed", lambda *_args: True)
    before = stock_of(client, "SAN-002", "40")
    order_id = place(client, sku="SAN-002", size="40")
    monkeypatch.undo()
    with engine_for("shop").connect() as conn:
        [placed] = conn.execute(
            select(outbox.c.event).where(outbox.c.subject == order_id)
        ).scalars()
    publish_raw(celery_app, "orders.on_order_placed", "orders", json.dumps(placed).encode()[:-40])
    wait_for(lambda: any(order_id in (d.raw or "") for d in dlq.parked()), timeout_s=30)
    assert order(client, order_id)["status"] == "PLACED"
    due = utcnow() + timedelta(seconds=get_settings().accept_timeout_s)

    assert acceptance.sweep(celery_app, due - timedelta(seconds=1)) == 0  # not early
    assert acceptance.sweep(celery_app, due + timedelta(seconds=1)) >= 1

    cancelled = ends(client, order_id)
    assert cancelled["reason"] == "not_accepted"
    assert (
        cancelled["reason_text"]
        == "We could not take this order up in time; any payment is refunded"
    )
    assert stock_of(client, "SAN-002", "40") == before
    assert acceptance.sweep(celery_app, due + timedelta(seconds=2)) == 0  # asked once

    # The intact order.placed arrives after all: recorded as ignored, nothing asked of payments.
    assert relay_once(celery_app, "shop", grace=timedelta(0)) >= 1
    wait_for(lambda: stream_of(order_id) == ["OrderRejected", "TransitionIgnored"])
    assert order(client, order_id)["status"] == "CANCELLED"
    assert charges(gateway_url, order_id) == []


def test_a_payment_parked_for_good_ends_at_its_deadline_and_no_longer_shows_delayed(
    client: FlaskClient, gateway_url: str, celery_app: Celery
) -> None:
    before = stock_of(client, "SAN-002", "41")
    order_id = place(client, card=FAILING_CARD, sku="SAN-002", size="41")
    assert wait_for(lambda: order(client, order_id)["delayed"], timeout_s=60)["stage"] == "payment"

    due = utcnow() + timedelta(seconds=get_settings().payment_timeout_s)
    timer.sweep(celery_app, due + timedelta(seconds=1))

    cancelled = ends(client, order_id)
    assert (cancelled["reason"], cancelled["delayed"]) == ("payment_timeout", None)
    assert stock_of(client, "SAN-002", "41") == before
    assert charges(gateway_url, order_id) == []


def test_a_parcel_that_never_leaves_is_stopped_at_its_deadline_and_the_payment_refunded(
    client: FlaskClient,
    gateway_url: str,
    celery_app: Celery,
    setting: Callable[[str, str], None],
) -> None:
    setting("SHOESHOP_PACKING_DELAY", "3600")  # packed for an hour; no sweep dispatches it here
    before = stock_of(client, "SAN-002", "42")
    order_id = place(client, sku="SAN-002", size="42")
    wait_for(lambda: order(client, order_id)["status"] == "PAID")
    due = utcnow() + timedelta(seconds=get_settings().ship_timeout_s)

    timer.sweep(celery_app, due - timedelta(minutes=1))
    assert order(client, order_id)["status"] == "PAID"  # not early
    timer.sweep(celery_app, due + timedelta(seconds=1))

    cancelled = ends(client, order_id)
    assert cancelled["reason"] == "shipping_timeout"
    assert stock_of(client, "SAN-002", "42") == before
    refunded = wait_for(
        lambda: [c["status"] for c in charges(gateway_url, order_id)] == ["refunded"]
    )
    assert refunded


def test_a_refund_that_fails_for_good_is_parked_and_cancels_nothing_again(
    client: FlaskClient, celery_app: Celery
) -> None:
    order_id = place(client, card=FAILING_CARD, sku="SAN-002", size="43")
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202
    ends(client, order_id)
    stream = stream_of(order_id)
    # A compensation that can never be applied: a refund of a payment nobody made.
    refund = RefundRequested(
        order_id=order_id,
        payment_id=str(uuid.uuid4()),
        amount_cents=1,
        refund_id=str(uuid.uuid4()),
    )
    bad = new_event(refund, source="/orders", subject=order_id)
    publish(celery_app, [Envelope(**{**bad.to_dict(), "data": {"order_id": order_id}})])

    [letter] = wait_for(lambda: dlq.parked(subject=order_id), timeout_s=60)
    assert letter.task == "payments.on_refund_requested"

    # orders hears that it was parked, and the order, already ended, is left as it is: no
    # second cancellation, no loop of parked notices.
    wait_for(lambda: order(client, order_id)["timeline"][-1]["type"].startswith("shoeshop.message"))
    assert stream_of(order_id) == stream
    assert [letter.id for letter in dlq.parked(subject=order_id)] == [letter.id]
    assert order(client, order_id)["status"] == "CANCELLED"


def test_a_cancellation_orders_ignores_still_tells_the_shop_the_status(
    client: FlaskClient, celery_app: Celery
) -> None:
    order_id = place(client, sku="SAN-002", size="45")
    shipped = wait_for(lambda: (o := order(client, order_id))["status"] == "SHIPPED" and o)
    notices = sum(e["type"].endswith("status_changed.v2") for e in shipped["timeline"])
    # A cancellation arriving after the parcel left (the shop's view was behind): orders ignores
    # it and says the status all the same, parcel and all.
    request = OrderCancellationRequested(order_id=order_id, reason="customer_request")
    publish(celery_app, [new_event(request, source="/shop", subject=order_id)])

    def told_again() -> dict[str, Any] | None:
        view = order(client, order_id)
        told = sum(e["type"].endswith("status_changed.v2") for e in view["timeline"])
        return view if told > notices else None

    view = wait_for(told_again)
    assert view["status"] == "SHIPPED" and view["shipment"] == shipped["shipment"]
    assert stream_of(order_id)[-1] == "TransitionIgnored"
