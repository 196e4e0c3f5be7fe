"""The shop's order view answers from the shop's own log: the timeline orders' notices name, and
whether a message about the order waits in the dead letters (message.parked) until it moves on.

On a real SQLite database of the shop's tables; the events are built as their producers build
them (contracts.new_event, deadletters.delay_notice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine

from shop import readmodel
from shop.tables import metadata as shop_metadata
from workers.messaging import contracts, deadletters
from workers.messaging.contracts import OrderStatusChanged, SagaStep, wire_type
from workers.messaging.envelope import Envelope
from workers.messaging.tables import kit_metadata
from workers.operations import dlq

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
def conn() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    kit_metadata.create_all(engine)
    shop_metadata.create_all(engine)
    with engine.begin() as connection:
        yield connection
    engine.dispose()


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def placed(order_id: str) -> Envelope:
    data = {
        "order_id": order_id,
        "customer": {"name": "Ada", "email": "ada@example.com"},
        "shipping_address": {
            "line1": "1 Road",
            "city": "Delft",
            "postal_code": "2611",
            "country": "NL",
        },
        "items": [
            {
                "sku": "RUN-001",
                "name": "Runner",
                "size": "42",
                "quantity": 1,
                "unit_price_cents": 100,
            }
        ],
        "total_cents": 100,
        "currency": "EUR",
        "payment": {"token": "t", "brand": "visa", "last4": "4242"},
    }
    return Envelope(
        type=wire_type("order.placed"), source="/shop", subject=order_id, data=data, time=at(0)
    )


def emitted(name: str, source: str, order_id: str, seconds: float) -> Envelope:
    return Envelope(
        type=wire_type(name), source=source, subject=order_id, data={}, time=at(seconds)
    )


def notice(
    order_id: str, status: str, seconds: float, steps: list[Envelope], reason: str | None = None
) -> Envelope:
    data = OrderStatusChanged(
        order_id=order_id,
        status=status,  # type: ignore[arg-type]  # a literal checked by the model
        reason=reason,
        steps=[SagaStep(id=s.id, type=s.type, source=s.source, time=s.occurred_at) for s in steps],
    )
    event = contracts.new_event(data, source="/orders", subject=order_id)
    return Envelope(**{**event.to_dict(), "time": at(seconds)})


def delayed(order_id: str, parked: Envelope, queue: str, since_s: float) -> Envelope:
    since = T0 + timedelta(seconds=since_s)
    event = deadletters.parked_notice(
        parked.to_dict(), order_id, queue, parked.id, since, "retries_exhausted"
    )
    assert event is not None
    return event


def hear(conn: Connection, *events: Envelope) -> dict[str, Any]:
    for event in events:
        readmodel.remember(conn, event)
        readmodel.apply(conn, event, live=False)
    view = readmodel.order_view(conn, events[0].subject)
    assert view is not None
    return view


def test_the_timeline_is_the_shops_log_with_the_steps_orders_names_each_once(
    conn: Connection,
) -> None:
    order_id = str(uuid.uuid4())
    order_placed = placed(order_id)
    requested = emitted("payment.requested", "/orders", order_id, 0.5)
    succeeded = emitted("payment.succeeded", "/payments", order_id, 2)
    shipment = emitted("shipment.requested", "/orders", order_id, 2.25)

    view = hear(
        conn,
        order_placed,
        notice(order_id, "PAYMENT_PENDING", 0.5, [order_placed, requested]),
        notice(order_id, "PAID", 2.25, [succeeded, shipment]),
    )

    assert [(e["type"], e["source"], e["since_placed_s"]) for e in view["timeline"]] == [
        (wire_type("order.placed"), "/shop", 0.0),
        (wire_type("payment.requested"), "/orders", 0.5),
        (wire_type("order.status_changed"), "/orders", 0.5),
        (wire_type("payment.succeeded"), "/payments", 2.0),
        (wire_type("shipment.requested"), "/orders", 2.25),
        (wire_type("order.status_changed"), "/orders", 2.25),
    ]
    assert view["timeline"][0]["id"] == order_placed.id
    assert readmodel.timeline(conn, str(uuid.uuid4())) == []


def test_a_v1_notice_without_steps_is_still_one_entry(conn: Connection) -> None:
    order_id = str(uuid.uuid4())
    old = Envelope(
        type="shoeshop.order.status_changed.v1",
        source="/orders",
        subject=order_id,
        data={"order_id": order_id, "status": "PAYMENT_PENDING", "reason": None},
        time=at(1),
    )

    view = hear(conn, placed(order_id), old)

    assert [e["type"] for e in view["timeline"]] == [wire_type("order.placed"), old.type]


def test_an_order_waits_on_its_parked_message_until_orders_announces_a_later_step(
    conn: Connection,
) -> None:
    order_id = str(uuid.uuid4())
    order_placed = placed(order_id)
    requested = emitted("payment.requested", "/orders", order_id, 0.5)
    pending = notice(order_id, "PAYMENT_PENDING", 0.5, [order_placed, requested])

    # The notice of the step before the failure may arrive after the letter's message.parked.
    view = hear(conn, order_placed, delayed(order_id, requested, "payments", 30), pending)
    assert view["delayed"] == {"since": at(30), "stage": "payment"}

    # A second letter keeps the first one's time: the order waits since the earlier.
    view = hear(conn, delayed(order_id, requested, "orders", 45))
    assert view["delayed"] == {"since": at(30), "stage": "payment"}

    succeeded = emitted("payment.succeeded", "/payments", order_id, 90)
    view = hear(conn, notice(order_id, "PAID", 90, [succeeded]))
    assert view["delayed"] is None


def test_the_shops_own_parked_step_applied_on_replay_ends_the_wait(conn: Connection) -> None:
    order_id = str(uuid.uuid4())
    order_placed = placed(order_id)
    pending = notice(order_id, "PAYMENT_PENDING", 0.5, [order_placed])

    view = hear(conn, order_placed, delayed(order_id, pending, "shop", 5))
    assert view["delayed"] == {"since": at(5), "stage": "tracking"}

    view = hear(conn, pending)  # replayed: older than the failure, but the very event parked
    assert view["delayed"] is None
    assert view["status"] == "PAYMENT_PENDING"


def test_a_final_order_waits_on_nothing_and_a_late_delay_does_not_mark_it(
    conn: Connection,
) -> None:
    order_id = str(uuid.uuid4())
    order_placed = placed(order_id)
    requested = emitted("payment.requested", "/orders", order_id, 0.5)

    view = hear(
        conn,
        order_placed,
        notice(order_id, "CANCELLED", 1, [requested], reason="customer_request"),
        delayed(order_id, requested, "payments", 30),
    )

    assert view["delayed"] is None


def test_rebuilding_the_view_from_the_log_keeps_the_wait(conn: Connection) -> None:
    order_id = str(uuid.uuid4())
    order_placed = placed(order_id)
    requested = emitted("payment.requested", "/orders", order_id, 0.5)
    live = hear(
        conn,
        order_placed,
        notice(order_id, "PAYMENT_PENDING", 0.5, [order_placed, requested]),
        delayed(order_id, requested, "payments", 30),
    )

    readmodel.rebuild(conn)

    assert readmodel.order_view(conn, order_id) == live
    assert live["delayed"] == {"since": at(30), "stage": "payment"}


def test_a_parked_order_delayed_writes_no_other(conn: Connection) -> None:
    order_id = str(uuid.uuid4())
    first = delayed(order_id, placed(order_id), "orders", 5)

    def notice(body: object, subject: str | None, queue: str, event_id: str | None) -> object:
        return deadletters.parked_notice(body, subject, queue, event_id, T0, "bug")

    assert notice(first.to_dict(), order_id, "shop", first.id) is None
    assert notice(["not", "an", "event"], order_id, "shop", None) is None
    assert notice(first.to_dict(), None, "shop", first.id) is None
    # A queue the broker names (x-death) is no step of the order: "unknown" to the shop.
    odd = deadletters.parked_notice(
        placed(order_id).to_dict(), order_id, "orders.dlq", None, T0, "rejected_by_broker"
    )
    assert odd is not None and odd.data["queue"] == "unknown"


def test_a_replayed_letter_resumes_the_order_until_it_fails_again(conn: Connection) -> None:
    order_id = str(uuid.uuid4())
    order_placed = placed(order_id)
    requested = emitted("payment.requested", "/orders", order_id, 0.5)
    pending = notice(order_id, "PAYMENT_PENDING", 0.5, [order_placed, requested])
    hear(conn, order_placed, pending, delayed(order_id, requested, "payments", 30))

    other = dlq.replayed_notice(order_id, str(uuid.uuid4()))  # another event's letter
    assert other is not None
    assert hear(conn, other)["delayed"] == {"since": at(30), "stage": "payment"}
    replayed = dlq.replayed_notice(order_id, requested.id)
    assert replayed is not None
    assert hear(conn, replayed)["delayed"] is None
    # Failing again: delayed again, since its first failure.
    assert hear(conn, delayed(order_id, requested, "payments", 30))["delayed"] is not None
