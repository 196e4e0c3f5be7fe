"""The order aggregate: the fold that gives its state, and the decisions it makes.

Pure: no I/O, no clock, no ids generated here; the caller passes them in. Every decision takes
the current state and returns the new events; an event that no longer applies yields none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from workers.messaging.errors import InvalidEvent, InvariantViolation
from workers.orders.events import (
    AttentionClosed,
    AttentionNeeded,
    CancellationRequested,
    DomainEvent,
    Item,
    LatePaymentReceived,
    OperatorActed,
    OrderCancelled,
    OrderPlaced,
    OrderRejected,
    OrderShipped,
    PaymentDeclined,
    PaymentRefunded,
    PaymentRequested,
    PaymentSucceeded,
    RefundFailed,
    RefundRequested,
    ShipmentRequested,
    ShipmentStopped,
    TransitionIgnored,
)


class Status(StrEnum):
    PLACED = "PLACED"
    PAYMENT_PENDING = "PAYMENT_PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"


class Reason(StrEnum):
    """Why an order was cancelled (docs/architecture.md, *Order lifecycle*)."""

    PAYMENT_DECLINED = "payment_declined"
    CUSTOMER_REQUEST = "customer_request"
    PAYMENT_TIMEOUT = "payment_timeout"
    SHIPPING_TIMEOUT = "shipping_timeout"  # paid, but the parcel did not leave in time
    INVALID_ORDER = "invalid_order"  # an event about it can never be applied
    NOT_ACCEPTED = "not_accepted"  # still PLACED at the shop past its acceptance deadline


class Attention(StrEnum):
    """Why an order waits for an operator (docs/operations.md, *Compensations that fail*)."""

    REFUND_FAILED = "refund_failed"  # the gateway refused the refund for good
    MESSAGE_PARKED = "message_parked"  # a message giving money or stock back was parked


class Action(StrEnum):
    """What an operator may do about an order needing attention (contracts.OperatorAction)."""

    RETRY_REFUND = "retry_refund"
    CLOSE = "close"


CANCELLABLE_BEFORE_PAYMENT = (Status.PLACED, Status.PAYMENT_PENDING)
# The queues whose messages about a cancelled order give something back: the shop the reserved
# stock, shipping the parcel. (Payments' give money back only when a refund is owed: a parked
# charge of an order cancelled unpaid took nothing.)
COMPENSATING_QUEUES = ("shop", "shipping")


@dataclass(frozen=True)
class Order:
    """The state of one order, as folded from its events."""

    order_id: str
    status: Status
    customer: dict[str, str]
    shipping_address: dict[str, str]
    items: tuple[Item, ...]
    total_cents: int
    currency: str
    reason: str | None = None
    payment_id: str | None = None
    payment_due_at: str | None = None
    charge_id: str | None = None
    shipment_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    pending_cancellation: str | None = None
    shipment_stopped: bool = False
    refund_id: str | None = None
    # Every refund asked for, the latest last: an earlier one that went through after all (its
    # letter replayed) still counts.
    refund_ids: tuple[str, ...] = ()
    refunded: bool = False
    attention: str | None = None  # an Attention while an operator must act, else None
    attention_detail: str | None = None
    version: int = 0


def total_cents(items: Iterable[Item]) -> int:
    return sum(item.line_total_cents for item in items)


# --- the fold ---------------------------------------------------------------------------


def evolve(order: Order | None, event: DomainEvent) -> Order:
    """Apply one stored event to the state; the event is a fact, so it always applies."""
    if isinstance(event, OrderPlaced):
        return Order(
            order_id=event.order_id,
            status=Status.PLACED,
            customer=event.customer,
            shipping_address=event.shipping_address,
            items=event.items,
            total_cents=event.total_cents,
            currency=event.currency,
            version=1,
        )
    if isinstance(event, OrderRejected) and order is None:
        # Never recorded: what orders knows of it is its id and its end.
        return Order(
            order_id=event.order_id,
            status=Status.CANCELLED,
            customer={},
            shipping_address={},
            items=(),
            total_cents=0,
            currency="",
            reason=event.reason,
            version=1,
        )
    if order is None:
        raise InvariantViolation(f"{type(event).__name__} cannot start an order's stream")
    return dataclasses.replace(
        order, version=order.version + 1, **_changes(event, order.refund_ids)
    )


def _changes(event: DomainEvent, order_refund_ids: tuple[str, ...]) -> dict[str, Any]:
    match event:
        case PaymentRequested(payment_id=payment_id, due_at=due_at):
            return {
                "status": Status.PAYMENT_PENDING,
                "payment_id": payment_id,
                "payment_due_at": due_at,
            }
        case PaymentSucceeded(charge_id=charge_id):
            return {"status": Status.PAID, "charge_id": charge_id}
        case LatePaymentReceived(charge_id=charge_id):
            return {"charge_id": charge_id}
        case OrderShipped(shipment_id=shipment_id, carrier=carrier, tracking_number=number):
            # A parcel that left answers any cancellation still pending: too late.
            return {
                "status": Status.SHIPPED,
                "shipment_id": shipment_id,
                "carrier": carrier,
                "tracking_number": number,
                "pending_cancellation": None,
            }
        case CancellationRequested(reason=reason):
            return {"pending_cancellation": reason}
        case OrderCancelled(reason=reason) | OrderRejected(reason=reason):
            return {"status": Status.CANCELLED, "reason": reason, "pending_cancellation": None}
        case RefundRequested(refund_id=refund_id):
            return {"refund_id": refund_id, "refund_ids": (*order_refund_ids, refund_id)}
        case PaymentRefunded():
            # The money went back: whatever an operator was waited for is settled.
            return {"refunded": True, "attention": None, "attention_detail": None}
        case RefundFailed(reason=reason):
            return {"attention": Attention.REFUND_FAILED.value, "attention_detail": reason}
        case AttentionNeeded(reason=reason, detail=detail):
            return {"attention": reason, "attention_detail": detail}
        case AttentionClosed():
            return {"attention": None, "attention_detail": None}
        case ShipmentStopped():
            return {"shipment_stopped": True}
        case PaymentDeclined() | ShipmentRequested() | OperatorActed() | TransitionIgnored():
            return {}
    raise InvariantViolation(f"unknown order event {type(event).__name__}")


def fold(events: Iterable[DomainEvent]) -> Order | None:
    order: Order | None = None
    for event in events:
        order = evolve(order, event)
    return order


# --- decisions --------------------------------------------------------------------------


def place(
    order: Order | None, placed: OrderPlaced, payment_id: str, due_at: datetime
) -> list[DomainEvent]:
    """A new order asks for its payment at once; placing the same order again does nothing."""
    if order is not None:
        return []
    if not placed.items:
        raise InvalidEvent("an order needs at least one item")
    if total_cents(placed.items) != placed.total_cents:
        raise InvalidEvent(
            f"total_cents {placed.total_cents} is not the sum of the items "
            f"({total_cents(placed.items)})"
        )
    return [
        placed,
        PaymentRequested(payment_id, placed.total_cents, placed.currency, due_at.isoformat()),
    ]


def record_payment(
    order: Order | None, payment_id: str, charge_id: str, refund_id: str
) -> list[DomainEvent]:
    """Paid: ship it. Paid after it was cancelled (timeout, customer): give the money back."""
    if order is None or order.payment_id != payment_id or order.charge_id is not None:
        return []
    if order.status is Status.PAYMENT_PENDING:
        return [PaymentSucceeded(payment_id, charge_id), ShipmentRequested(order.order_id)]
    if order.status is Status.CANCELLED:
        return [
            LatePaymentReceived(payment_id, charge_id),
            RefundRequested(refund_id, payment_id, order.total_cents),
        ]
    return []


def record_decline(order: Order | None, payment_id: str, reason: str) -> list[DomainEvent]:
    if order is None or order.status is not Status.PAYMENT_PENDING:
        return []
    if order.payment_id != payment_id:
        return []
    return [PaymentDeclined(payment_id, reason), OrderCancelled(Reason.PAYMENT_DECLINED.value)]


def record_dispatch(
    order: Order | None, shipment_id: str, carrier: str, tracking_number: str
) -> list[DomainEvent]:
    """A paid order ships; the parcel leaving wins over a cancellation still in flight, but
    not over shipping's own word that it stopped the parcel."""
    if order is None or order.status is not Status.PAID or order.shipment_stopped:
        return []
    return [OrderShipped(shipment_id, carrier, tracking_number)]


def request_cancellation(order: Order | None, reason: str) -> list[DomainEvent]:
    """Before payment: cancelled at once. Paid: only if shipping can still stop the parcel."""
    if order is None or order.pending_cancellation:
        return []
    if order.status in CANCELLABLE_BEFORE_PAYMENT:
        return [OrderCancelled(reason)]
    if order.status is Status.PAID:
        return [CancellationRequested(reason)]
    return []


def record_shipment_stopped(order: Order | None, refund_id: str) -> list[DomainEvent]:
    """The parcel will not leave: refund the payment; the order is cancelled once refunded."""
    if order is None or order.status is not Status.PAID or not order.pending_cancellation:
        return []
    if order.shipment_stopped:  # a repeated answer: the refund is asked for once
        return []
    assert order.payment_id is not None
    return [
        ShipmentStopped(order.order_id),
        RefundRequested(refund_id, order.payment_id, order.total_cents),
    ]


def record_refund(order: Order | None, refund_id: str) -> list[DomainEvent]:
    if order is None or refund_id not in order.refund_ids or order.refunded:
        return []
    events: list[DomainEvent] = [PaymentRefunded(refund_id)]
    if order.status is Status.PAID and order.pending_cancellation:
        events.append(OrderCancelled(order.pending_cancellation))
    return events


def record_refund_failure(order: Order | None, refund_id: str, reason: str) -> list[DomainEvent]:
    """The gateway refused the latest refund for good: the order needs an operator. A paid
    order whose parcel was stopped is cancelled all the same (it will not ship, and no timer
    should ask shipping again); the money it owes waits for the operator."""
    if order is None or order.refunded or order.refund_id != refund_id:
        return []
    return [RefundFailed(refund_id, reason), *_cancel_if_parcel_stopped(order)]


def record_parked(order: Order | None, queue: str) -> list[DomainEvent]:
    """A message about the order was parked for a fault other than ``invalid`` (it waits for an
    operator's replay). An order on its way has a deadline that ends it if the message never
    comes back; a compensation has none: a refund still owed (on the payments queue) or a
    cancelled order's stock or parcel (shop, shipping; not a charge of an order cancelled
    unpaid, which took nothing) makes the order need attention, once. A
    paid order whose parcel was stopped and whose refund is parked is cancelled too, as when the
    refund is refused."""
    if order is None or order.attention is not None:
        return []
    needed = AttentionNeeded(Attention.MESSAGE_PARKED.value, queue)
    owed = order.refund_id is not None and not order.refunded
    if queue == "payments" and owed:
        return [needed, *_cancel_if_parcel_stopped(order)]
    if order.status is Status.CANCELLED and queue in COMPENSATING_QUEUES:
        return [needed]
    return []


def _cancel_if_parcel_stopped(order: Order) -> list[DomainEvent]:
    """A paid order whose parcel shipping stopped, its refund stuck: cancelled all the same (it
    will not ship, and no timer should ask shipping again); the money waits for an operator."""
    if order.status is Status.PAID and order.pending_cancellation and order.shipment_stopped:
        return [OrderCancelled(order.pending_cancellation)]
    return []


def act(order: Order | None, action: str, note: str, refund_id: str) -> list[DomainEvent]:
    """An operator's command: ask for a refund still owed once more (under ``refund_id``, a new
    key, so the gateway is asked anew), or close the order's attention with a note. An order
    needing no attention, or a retry with no refund owed, changes nothing (the caller records
    the command as ignored)."""
    if order is None or order.attention is None:
        return []
    if action == Action.CLOSE:
        return [OperatorActed(action, note), AttentionClosed(note)]
    if action == Action.RETRY_REFUND and order.refund_id is not None and not order.refunded:
        assert order.payment_id is not None  # a refund is asked for a payment only
        return [
            OperatorActed(action, note),
            RefundRequested(refund_id, order.payment_id, order.total_cents),
        ]
    return []


def expire(order: Order | None, now: datetime) -> list[DomainEvent]:
    """The deadline of the order's status has passed (the caller's timer says so): an order
    still waiting for its money is cancelled; a paid one whose parcel has not left is cancelled
    as a customer's would be, if shipping can still stop it (and refunded); any other is left."""
    if order is None:
        return []
    if order.status is Status.PAYMENT_PENDING and order.payment_due_at is not None:
        if now < datetime.fromisoformat(order.payment_due_at):
            return []
        return [OrderCancelled(Reason.PAYMENT_TIMEOUT.value)]
    if order.status is Status.PAID:
        # Asked again if a cancellation is already pending: its answer may be what was lost
        # (shipping answers with the parcel's state, which a repeat does not change).
        return [CancellationRequested(order.pending_cancellation or Reason.SHIPPING_TIMEOUT.value)]
    return []


def reject(order: Order | None, order_id: str, reason: str) -> list[DomainEvent]:
    """End an order that cannot go on. Never recorded: its stream starts rejected, and an
    order.placed that comes later is ignored (nothing charged). Before payment: cancelled at
    once. Paid: cancelled, and refunded, once shipping stops the parcel (as a customer's
    cancellation). Shipped or cancelled: nothing left to end."""
    if order is None or order.status in CANCELLABLE_BEFORE_PAYMENT:
        return [OrderRejected(order_id, reason)]
    return request_cancellation(order, reason)


def ignored(order: Order, event_name: str) -> list[DomainEvent]:
    """The record that an event arrived and did not apply, so the stream tells the whole story."""
    return [TransitionIgnored(event_name, order.status.value)]
