"""The order aggregate: every transition of the lifecycle, decided and folded without I/O."""

from __future__ import annotations

import pytest

from workers.messaging.errors import InvalidEvent, InvariantViolation
from workers.orders import domain
from workers.orders.domain import Item, OrderPlaced, Status

PAYMENT_ID = "pay-1"


def placed(total: int = 2 * 12900) -> OrderPlaced:
    return OrderPlaced(
        order_id="order-1",
        customer={"name": "Ada", "email": "ada@example.com"},
        shipping_address={
            "line1": "1 Main St",
            "city": "Utrecht",
            "postal_code": "1234",
            "country": "NL",
        },
        items=(Item("TRL-001", "Ridge Runner", "42", 2, 12900),),
        total_cents=total,
        currency="EUR",
    )


def after(*decisions: list[domain.DomainEvent]) -> domain.Order:
    events = [event for decision in decisions for event in decision]
    order = domain.fold(events)
    assert order is not None
    return order


def test_placing_an_order_requests_its_payment() -> None:
    events = domain.place(None, placed(), PAYMENT_ID)
    order = after(events)
    assert order.status is Status.PAYMENT_PENDING
    assert events[1] == domain.PaymentRequested(PAYMENT_ID, 25800, "EUR")


def test_placing_the_same_order_twice_changes_nothing() -> None:
    order = after(domain.place(None, placed(), PAYMENT_ID))
    assert domain.place(order, placed(), "another-payment") == []


def test_a_total_that_is_not_the_sum_of_the_items_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="total_cents"):
        domain.place(None, placed(total=1), PAYMENT_ID)


def test_a_successful_payment_marks_the_order_paid_and_asks_for_shipment() -> None:
    placing = domain.place(None, placed(), PAYMENT_ID)
    paying = domain.record_payment(after(placing), PAYMENT_ID, "ch_1")
    order = after(placing, paying)
    assert order.status is Status.PAID
    assert order.charge_id == "ch_1"
    assert isinstance(paying[-1], domain.ShipmentRequested)


def test_a_declined_card_cancels_the_order() -> None:
    placing = domain.place(None, placed(), PAYMENT_ID)
    order = after(placing, domain.record_decline(after(placing), PAYMENT_ID, "card_declined"))
    assert order.status is Status.CANCELLED
    assert order.reason == "payment_declined"


def test_a_dispatched_shipment_ships_a_paid_order() -> None:
    placing = domain.place(None, placed(), PAYMENT_ID)
    paying = domain.record_payment(after(placing), PAYMENT_ID, "ch_1")
    shipping = domain.record_dispatch(after(placing, paying), "s-1", "PostNL", "3S123")
    order = after(placing, paying, shipping)
    assert order.status is Status.SHIPPED
    assert order.version == 5


def test_a_payment_for_another_payment_id_is_stale_and_ignored() -> None:
    order = after(domain.place(None, placed(), PAYMENT_ID))
    assert domain.record_payment(order, "someone-else", "ch_9") == []


def test_a_second_payment_result_after_the_first_is_ignored() -> None:
    placing = domain.place(None, placed(), PAYMENT_ID)
    paid = after(placing, domain.record_payment(after(placing), PAYMENT_ID, "ch_1"))
    assert domain.record_decline(paid, PAYMENT_ID, "card_declined") == []
    assert domain.record_payment(paid, PAYMENT_ID, "ch_1") == []


def test_a_dispatch_before_payment_is_ignored() -> None:
    order = after(domain.place(None, placed(), PAYMENT_ID))
    assert domain.record_dispatch(order, "s-1", "PostNL", "3S1") == []


def test_a_stream_cannot_start_with_anything_but_order_placed() -> None:
    with pytest.raises(InvariantViolation):
        domain.fold([domain.PaymentSucceeded(PAYMENT_ID, "ch_1")])


def test_stored_events_round_trip_through_their_records() -> None:
    events = domain.place(None, placed(), PAYMENT_ID)
    restored = [domain.from_record(*domain.to_record(event)) for event in events]
    assert restored == events


def test_totals_are_whole_cents() -> None:
    items = [Item("A", "a", "40", 3, 1999), Item("B", "b", "41", 1, 1)]
    assert domain.total_cents(items) == 5998
