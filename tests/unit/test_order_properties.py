"""Whatever order the saga's events arrive in, and however often, the order stays consistent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_order_lifecycle import DUE, PAY, placed
from workers.orders import domain
from workers.orders.domain import Order, Status
from workers.orders.events import (
    DomainEvent,
    OrderShipped,
    PaymentRefunded,
    PaymentSucceeded,
    ShipmentStopped,
)

Step = Callable[[Order | None], list[DomainEvent]]

STEPS: dict[str, Step] = {
    "paid": lambda o: domain.record_payment(o, PAY, "ch_1", "refund-a"),
    "declined": lambda o: domain.record_decline(o, PAY, "card_declined"),
    "dispatched": lambda o: domain.record_dispatch(o, "s-1", "PostNL", "3S1"),
    "cancel": lambda o: domain.request_cancellation(o, "customer_request"),
    "parcel-stopped": lambda o: domain.record_shipment_stopped(o, "refund-b"),
    "refunded-a": lambda o: domain.record_refund(o, "refund-a"),
    "refunded-b": lambda o: domain.record_refund(o, "refund-b"),
    "timeout": lambda o: domain.expire(o, DUE + timedelta(seconds=1)),
    "early-timeout": lambda o: domain.expire(o, datetime(2026, 1, 1, tzinfo=UTC)),
    # Compensations that fail, and the operator's commands (issue #19).
    "refund-refused-a": lambda o: domain.record_refund_failure(o, "refund-a", "card_declined"),
    "refund-refused-b": lambda o: domain.record_refund_failure(o, "refund-b", "card_declined"),
    "refund-refused-c": lambda o: domain.record_refund_failure(o, "refund-c", "card_declined"),
    "refund-parked": lambda o: domain.record_parked(o, "payments"),
    "stock-release-parked": lambda o: domain.record_parked(o, "shop"),
    "operator-retry": lambda o: domain.act(o, "retry_refund", "again", "refund-c"),
    "operator-close": lambda o: domain.act(o, "close", "settled", "unused"),
    "refunded-c": lambda o: domain.record_refund(o, "refund-c"),
}
FINAL = (Status.SHIPPED, Status.CANCELLED)


def run(names: list[str]) -> list[DomainEvent]:
    events: list[DomainEvent] = list(domain.place(None, placed(), PAY, DUE))
    for name in names:
        events.extend(STEPS[name](domain.fold(events)))
    return events


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(sorted(STEPS)), max_size=12))
def test_any_sequence_of_saga_events_keeps_the_order_consistent(names: list[str]) -> None:
    events = run(names)
    order = domain.fold(events)
    assert order is not None

    # Charged at most once, refunded at most once, shipped at most once.
    assert sum(isinstance(e, PaymentSucceeded) for e in events) <= 1
    assert sum(isinstance(e, PaymentRefunded) for e in events) <= 1
    assert sum(isinstance(e, OrderShipped) for e in events) <= 1
    # A final status is final.
    statuses = [s.status for s in _states(events)]
    for earlier, later in pairwise(statuses):
        if earlier in FINAL:
            assert later is earlier
    # A shipped order was paid and never refunded or stopped; a refund follows money taken.
    if order.status is Status.SHIPPED:
        assert order.charge_id is not None and not order.refunded
        assert not any(isinstance(e, ShipmentStopped) for e in events)
    if order.refunded:
        assert order.charge_id is not None
    # Only a cancelled order waits for an operator (a compensation is a cancellation's).
    if order.attention is not None:
        assert order.status is Status.CANCELLED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted(STEPS)), max_size=8), st.sampled_from(sorted(STEPS)))
def test_a_duplicate_of_the_last_event_changes_nothing(names: list[str], last: str) -> None:
    once = domain.fold(run([*names, last]))
    twice = domain.fold(run([*names, last, last]))
    assert once is not None and twice is not None
    facts = ("status", "charge_id", "refunded", "attention")
    assert [getattr(twice, name) for name in facts] == [getattr(once, name) for name in facts]


def _states(events: list[DomainEvent]) -> list[Order]:
    states: list[Order] = []
    state: Order | None = None
    for event in events:
        state = domain.evolve(state, event)
        states.append(state)
    return states
