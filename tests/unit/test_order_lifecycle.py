"""The order aggregate: every transition of the lifecycle, decided and folded without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from workers.messaging.contracts import Event, wire_type
from workers.messaging.errors import InvalidEvent, InvariantViolation
from workers.orders import domain
from workers.orders.announcements import attention_change, status_change
from workers.orders.domain import Order, Status
from workers.orders.events import (
    AttentionClosed,
    CancellationRequested,
    DomainEvent,
    Item,
    OperatorActed,
    OrderPlaced,
    PaymentRequested,
    PaymentSucceeded,
    RefundRequested,
    ShipmentRequested,
    from_record,
    to_record,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DUE = NOW + timedelta(minutes=15)
PAY = "pay-1"
REFUND = "refund-1"


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


def said_by(announced: list[Event]) -> dict[str, object]:
    """Each announcement's data as it goes on the wire, by its wire type."""
    return {event.TYPE: msgspec.to_builtins(event) for event in announced}


class Story:
    """An order's stream built step by step, the way the handlers build it."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    @property
    def order(self) -> Order | None:
        return domain.fold(self.events)

    def then(self, decision: list[DomainEvent]) -> Story:
        self.events.extend(decision)
        return self

    def placed(self) -> Story:
        return self.then(domain.place(self.order, placed(), PAY, DUE))

    def paid(self) -> Story:
        return self.then(domain.record_payment(self.order, PAY, "ch_1", REFUND))

    def shipped(self) -> Story:
        return self.then(domain.record_dispatch(self.order, "s-1", "PostNL", "3S1"))

    @property
    def status(self) -> Status:
        assert self.order is not None
        return self.order.status


def test_placing_an_order_requests_its_payment_with_a_deadline() -> None:
    story = Story().placed()
    assert story.status is Status.PAYMENT_PENDING
    assert story.events[1] == PaymentRequested(PAY, 25800, "EUR", DUE.isoformat())


def test_placing_the_same_order_twice_changes_nothing() -> None:
    story = Story().placed()
    assert domain.place(story.order, placed(), "another-payment", DUE) == []


def test_a_total_that_is_not_the_sum_of_the_items_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="total_cents"):
        domain.place(None, placed(total=1), PAY, DUE)


def test_a_successful_payment_marks_the_order_paid_and_asks_for_shipment() -> None:
    story = Story().placed().paid()
    assert story.status is Status.PAID
    assert isinstance(story.events[-1], ShipmentRequested)


def test_a_declined_card_cancels_the_order() -> None:
    story = Story().placed()
    story.then(domain.record_decline(story.order, PAY, "card_declined"))
    assert story.status is Status.CANCELLED
    assert story.order is not None and story.order.reason == "payment_declined"


def test_a_dispatched_shipment_ships_a_paid_order() -> None:
    story = Story().placed().paid().shipped()
    assert story.status is Status.SHIPPED


def test_the_status_change_to_shipped_names_the_parcel_for_the_shop() -> None:
    story = Story().placed().paid()
    before = story.order
    dispatched = domain.record_dispatch(before, "s-1", "PostNL", "3S1")
    after = story.then(dispatched).order
    assert before is not None and after is not None
    notice = status_change(before, after, dispatched, steps=[])
    assert notice is not None
    assert said_by([notice])[wire_type("order.status_changed")] == {
        "order_id": "order-1",
        "status": "SHIPPED",
        "reason": None,
        "shipment": {"carrier": "PostNL", "tracking_number": "3S1"},
    }


def test_other_status_changes_stay_thin() -> None:
    story = Story().placed()
    before = story.order
    paid = domain.record_payment(before, PAY, "ch_1", REFUND)
    after = story.then(paid).order
    assert before is not None and after is not None
    notice = status_change(before, after, paid, steps=[])
    assert notice is not None
    thin = {"order_id": "order-1", "status": "PAID", "reason": None}
    assert said_by([notice])[wire_type("order.status_changed")] == thin


def test_cancelling_before_payment_cancels_at_once() -> None:
    story = Story().placed()
    story.then(domain.request_cancellation(story.order, "customer_request"))
    assert story.status is Status.CANCELLED
    assert story.order is not None and story.order.reason == "customer_request"


def test_cancelling_a_paid_order_asks_shipping_to_stop_the_parcel_first() -> None:
    story = Story().placed().paid()
    story.then(domain.request_cancellation(story.order, "customer_request"))
    assert story.status is Status.PAID
    assert story.events[-1] == CancellationRequested("customer_request")


def test_a_stopped_parcel_is_refunded_and_then_the_order_is_cancelled() -> None:
    story = Story().placed().paid()
    story.then(domain.request_cancellation(story.order, "customer_request"))
    story.then(domain.record_shipment_stopped(story.order, REFUND))
    assert isinstance(story.events[-1], RefundRequested)
    assert story.status is Status.PAID
    story.then(domain.record_refund(story.order, REFUND))
    assert story.status is Status.CANCELLED
    assert story.order is not None and story.order.refunded
    assert story.order.reason == "customer_request"


def test_a_parcel_that_left_before_the_cancellation_ships_the_order() -> None:
    story = Story().placed().paid()
    story.then(domain.request_cancellation(story.order, "customer_request"))
    story.shipped()
    assert story.status is Status.SHIPPED
    assert story.order is not None and story.order.pending_cancellation is None
    assert domain.record_shipment_stopped(story.order, REFUND) == []


def test_a_shipped_order_cannot_be_cancelled() -> None:
    story = Story().placed().paid().shipped()
    assert domain.request_cancellation(story.order, "customer_request") == []


def test_an_unpaid_order_past_its_deadline_is_cancelled_for_timeout() -> None:
    story = Story().placed()
    assert domain.expire(story.order, DUE - timedelta(seconds=1)) == []
    story.then(domain.expire(story.order, DUE))
    assert story.status is Status.CANCELLED
    assert story.order is not None and story.order.reason == "payment_timeout"


def test_a_payment_after_a_timeout_is_refunded_automatically() -> None:
    story = Story().placed()
    story.then(domain.expire(story.order, DUE))
    story.paid()
    assert story.status is Status.CANCELLED
    assert story.events[-1] == RefundRequested(REFUND, PAY, 25800)
    assert domain.record_payment(story.order, PAY, "ch_1", "refund-2") == []  # refunded once


def test_a_paid_order_past_its_deadline_asks_shipping_until_it_answers_and_refunds_once() -> None:
    story = Story().placed().paid()
    story.then(domain.expire(story.order, DUE + timedelta(days=1)))
    assert story.events[-1] == CancellationRequested("shipping_timeout")
    # No answer by the next deadline (lost, or parked): asked again, for the same reason.
    assert domain.expire(story.order, DUE + timedelta(days=2)) == [
        CancellationRequested("shipping_timeout")
    ]
    story.then(domain.record_shipment_stopped(story.order, REFUND))
    assert story.events[-1] == RefundRequested(REFUND, PAY, 25800)
    assert domain.record_shipment_stopped(story.order, "refund-2") == []  # answered twice


def test_a_shipped_order_has_no_deadline_left() -> None:
    story = Story().placed().paid().shipped()
    assert domain.expire(story.order, DUE + timedelta(days=1)) == []


def test_an_order_never_recorded_is_rejected_and_its_late_placement_ignored() -> None:
    story = Story()
    story.then(domain.reject(None, "order-1", "not_accepted"))
    assert story.status is Status.CANCELLED
    assert story.order is not None and story.order.reason == "not_accepted"
    assert domain.place(story.order, placed(), PAY, DUE) == []  # nothing is charged


def test_a_rejected_order_before_payment_is_cancelled_and_after_it_refunded() -> None:
    story = Story().placed()
    story.then(domain.reject(story.order, "order-1", "invalid_order"))
    assert story.status is Status.CANCELLED
    assert story.order is not None and story.order.reason == "invalid_order"

    paid = Story().placed().paid()
    paid.then(domain.reject(paid.order, "order-1", "invalid_order"))
    assert paid.events[-1] == CancellationRequested("invalid_order")  # shipping stops, refund
    shipped = Story().placed().paid().shipped()
    assert domain.reject(shipped.order, "order-1", "invalid_order") == []


def test_a_payment_for_another_payment_id_is_stale() -> None:
    story = Story().placed()
    assert domain.record_payment(story.order, "someone-else", "ch_9", REFUND) == []


def test_a_second_payment_result_after_the_first_is_stale() -> None:
    story = Story().placed().paid()
    assert domain.record_decline(story.order, PAY, "card_declined") == []
    assert domain.record_payment(story.order, PAY, "ch_1", REFUND) == []


def test_a_refund_that_was_never_asked_for_is_stale() -> None:
    story = Story().placed().paid()
    assert domain.record_refund(story.order, "unknown") == []


def test_an_ignored_transition_is_recorded_without_changing_the_state() -> None:
    story = Story().placed().paid()
    before = story.order
    assert before is not None
    story.then(domain.ignored(before, "payment.declined"))
    after = story.order
    assert after is not None
    assert after.status is before.status and after.version == before.version + 1


def test_a_stream_cannot_start_with_anything_but_order_placed() -> None:
    with pytest.raises(InvariantViolation):
        domain.fold([PaymentSucceeded(PAY, "ch_1")])


def test_stored_events_round_trip_through_their_records() -> None:
    story = Story().placed().paid().shipped()
    assert [from_record(*to_record(event)) for event in story.events] == story.events


def test_totals_are_whole_cents() -> None:
    items = [Item("A", "a", "40", 3, 1999), Item("B", "b", "41", 1, 1)]
    assert domain.total_cents(items) == 5998


# --- compensations that fail (issue #19) -------------------------------------------------------


def cancelled_while_paid() -> Story:
    """A paid order the customer cancelled, whose parcel shipping stopped: a refund is owed."""
    story = Story().placed().paid()
    story.then(domain.request_cancellation(story.order, "customer_request"))
    story.then(domain.record_shipment_stopped(story.order, REFUND))
    return story


def test_a_refund_refused_for_good_cancels_the_stopped_order_and_needs_an_operator() -> None:
    story = cancelled_while_paid()
    story.then(domain.record_refund_failure(story.order, REFUND, "expired_or_canceled_card"))
    order = story.order
    assert order is not None and order.status is Status.CANCELLED
    assert order.reason == "customer_request" and not order.refunded
    assert (order.attention, order.attention_detail) == (
        "refund_failed",
        "expired_or_canceled_card",
    )


def test_a_refusal_of_an_older_refund_or_of_a_refunded_order_changes_nothing() -> None:
    story = cancelled_while_paid()
    assert domain.record_refund_failure(story.order, "another-refund", "card_declined") == []
    story.then(domain.record_refund(story.order, REFUND))
    assert domain.record_refund_failure(story.order, REFUND, "card_declined") == []


def test_an_operator_retry_asks_for_a_new_refund_and_its_success_settles_the_order() -> None:
    story = cancelled_while_paid()
    story.then(domain.record_refund_failure(story.order, REFUND, "expired_or_canceled_card"))
    decided = domain.act(story.order, "retry_refund", "card reissued", "refund-2")
    assert decided[-1] == RefundRequested("refund-2", PAY, 25800)
    story.then(decided)
    assert story.order is not None and story.order.attention == "refund_failed"  # until it is made
    story.then(domain.record_refund(story.order, "refund-2"))
    assert story.order is not None and story.order.refunded and story.order.attention is None


def test_a_retried_refund_refused_again_needs_the_operator_again() -> None:
    story = cancelled_while_paid()
    story.then(domain.record_refund_failure(story.order, REFUND, "expired_or_canceled_card"))
    story.then(domain.act(story.order, "retry_refund", "try again", "refund-2"))
    story.then(domain.record_refund_failure(story.order, "refund-2", "card_declined"))
    assert story.order is not None and story.order.attention_detail == "card_declined"
    assert story.status is Status.CANCELLED


def test_the_first_refund_going_through_after_a_retry_still_counts() -> None:
    story = cancelled_while_paid()
    story.then(domain.record_refund_failure(story.order, REFUND, "expired_or_canceled_card"))
    story.then(domain.act(story.order, "retry_refund", "try again", "refund-2"))
    story.then(domain.record_refund(story.order, REFUND))
    assert story.order is not None and story.order.refunded and story.order.attention is None


def test_closing_with_a_note_settles_the_attention_and_is_kept_in_the_stream() -> None:
    story = cancelled_while_paid()
    story.then(domain.record_refund_failure(story.order, REFUND, "expired_or_canceled_card"))
    story.then(domain.act(story.order, "close", "refunded by bank transfer", "unused"))
    assert story.order is not None and story.order.attention is None
    assert story.events[-2:] == [
        OperatorActed("close", "refunded by bank transfer"),
        AttentionClosed("refunded by bank transfer"),
    ]


def test_a_command_about_an_order_needing_no_attention_changes_nothing() -> None:
    story = Story().placed().paid()
    assert domain.act(story.order, "close", "nothing to do", "refund-2") == []
    assert domain.act(story.order, "retry_refund", "nothing to do", "refund-2") == []
    assert domain.act(None, "close", "no such order", "refund-2") == []


def test_a_retry_of_an_order_owing_no_refund_changes_nothing() -> None:
    story = Story().placed()
    story.then(domain.expire(story.order, DUE + timedelta(seconds=1)))  # cancelled, unpaid
    story.then(domain.record_parked(story.order, "shop"))  # its stock release parked
    assert story.order is not None and story.order.attention == "message_parked"
    assert domain.act(story.order, "retry_refund", "no refund here", "refund-2") == []


def test_a_parked_refund_needs_an_operator_once_and_cancels_the_stopped_order() -> None:
    story = cancelled_while_paid()
    story.then(domain.record_parked(story.order, "payments"))
    order = story.order
    assert order is not None and order.status is Status.CANCELLED
    assert (order.attention, order.attention_detail) == ("message_parked", "payments")
    assert domain.record_parked(order, "payments") == []  # a second letter: already waiting


def test_a_parked_message_of_an_order_on_its_way_is_left_to_its_deadline() -> None:
    story = Story().placed()
    assert domain.record_parked(story.order, "payments") == []  # the payment's deadline ends it
    story.paid()
    assert domain.record_parked(story.order, "shipping") == []  # the shipping deadline asks again
    assert domain.record_parked(None, "shop") == []  # an order orders never recorded


def test_a_parked_charge_of_an_order_cancelled_unpaid_needs_no_operator() -> None:
    story = Story().placed()
    story.then(domain.expire(story.order, DUE + timedelta(seconds=1)))  # payment_timeout
    assert story.status is Status.CANCELLED
    assert domain.record_parked(story.order, "payments") == []  # nothing was taken


def test_a_parked_mail_of_a_cancelled_order_needs_no_operator() -> None:
    story = Story().placed()
    story.then(domain.record_decline(story.order, PAY, "card_declined"))
    assert domain.record_parked(story.order, "notifications") == []
    assert domain.record_parked(story.order, "shop") != []  # its stock release does


def test_attention_is_announced_to_the_shop_when_it_starts_and_ends() -> None:
    story = cancelled_while_paid()
    before = story.order
    failed = domain.record_refund_failure(story.order, REFUND, "expired_or_canceled_card")
    story.then(failed)
    assert before is not None and story.order is not None
    started = attention_change(before, story.order, failed)
    assert started is not None
    assert (started.reason, started.detail, started.note) == (
        "refund_failed",
        "expired_or_canceled_card",
        None,
    )
    assert started.version == story.order.version
    before = story.order
    closed = domain.act(story.order, "close", "paid back in cash", "unused")
    story.then(closed)
    ended = attention_change(before, story.order, closed)
    assert ended is not None and (ended.reason, ended.note) == (None, "paid back in cash")
    assert attention_change(story.order, story.order, []) is None
