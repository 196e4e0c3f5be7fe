"""Translating between the orders stream and the integration events other components hear."""

from __future__ import annotations

from typing import Any

from workers.messaging import contracts
from workers.messaging.envelope import Envelope
from workers.messaging.errors import InvariantViolation
from workers.orders.domain import Order
from workers.orders.events import (
    AttentionClosed,
    CancellationRequested,
    DomainEvent,
    Item,
    OrderPlaced,
    PaymentRequested,
    RefundRequested,
    ShipmentRequested,
    TransitionIgnored,
)

SOURCE = "/orders"


def announce(
    before: Order | None,
    after: Order,
    new_events: list[DomainEvent],
    token: str | None,
    cause: Envelope,
) -> list[Envelope]:
    """Every event one step emits, in order: those other components must hear, then the shop's
    notice naming them (``status_change``). Raises InvariantViolation as ``new_event`` does."""
    emitted = [
        contracts.new_event(data, source=SOURCE, cause=cause)
        for data in announcements(before, after, new_events, token)
    ]
    # A cancellation that changed nothing is still answered with the status: the shop, which
    # shows "cancel requested", may not have heard the step that made it moot.
    answer = cause.name == "order.cancellation_requested"
    notice = status_change(before, after, new_events, steps=[cause, *emitted], answer=answer)
    if notice is not None:
        emitted.append(contracts.new_event(notice, source=SOURCE, cause=cause))
    attention = attention_change(before, after, new_events)
    if attention is not None:
        emitted.append(contracts.new_event(attention, source=SOURCE, cause=cause))
    return emitted


def attention_change(
    before: Order | None, after: Order, new_events: list[DomainEvent]
) -> contracts.OrderAttentionChanged | None:
    """What the shop hears when the order starts or stops needing an operator (or needs one for
    another reason), with the operator's note when they closed it; None when that did not change."""
    was = (before.attention, before.attention_detail) if before is not None else (None, None)
    if was == (after.attention, after.attention_detail):
        return None
    note = next((event.note for event in new_events if isinstance(event, AttentionClosed)), None)
    return contracts.OrderAttentionChanged(
        order_id=after.order_id,
        version=after.version,
        reason=after.attention,
        detail=after.attention_detail,
        note=note,
    )


def announcements(
    before: Order | None, after: Order, new_events: list[DomainEvent], token: str | None
) -> list[contracts.Event]:
    """What other components must hear about what just happened to the order; the shop's
    notification of it is ``status_change``, which names these."""
    out: list[contracts.Event] = []
    for event in new_events:
        match event:
            case PaymentRequested():
                if token is None:
                    raise InvariantViolation("a payment is requested only with the sealed card")
                out.append(
                    contracts.PaymentRequested(
                        order_id=after.order_id,
                        payment_id=event.payment_id,
                        amount_cents=event.amount_cents,
                        currency=event.currency,
                        token=token,
                    )
                )
            case ShipmentRequested():
                out.append(
                    contracts.ShipmentRequested(
                        order_id=after.order_id,
                        shipping_address=contracts.Address(**after.shipping_address),
                        items=[_shipment_item(item) for item in after.items],
                    )
                )
            case CancellationRequested():
                out.append(
                    contracts.ShipmentCancellationRequested(
                        order_id=after.order_id, reason=event.reason
                    )
                )
            case RefundRequested():
                out.append(
                    contracts.RefundRequested(
                        order_id=after.order_id,
                        payment_id=event.payment_id,
                        amount_cents=event.amount_cents,
                        refund_id=event.refund_id,
                    )
                )
    return out


def status_change(
    before: Order | None,
    after: Order,
    new_events: list[DomainEvent],
    steps: list[Envelope],
    *,
    answer: bool = False,
) -> contracts.OrderStatusChanged | None:
    """What the shop hears of the step: the status after it and the events it was about
    (``steps``: the one orders heard, then those it emitted), or None for a step that only
    ignored a late or repeated event (unless ``answer``: the status is then told all the same).
    Once shipped, each notice names the parcel, so the shop, which shows the tracking number,
    hears one message about it rather than two (shipment.dispatched stays for orders)."""
    changed = before is None or before.status is not after.status
    only_ignored = all(isinstance(event, TransitionIgnored) for event in new_events)
    if not changed and only_ignored and not answer:
        return None
    parcel = None
    if after.carrier and after.tracking_number:  # shipped: told with each notice from then on
        parcel = contracts.Parcel(carrier=after.carrier, tracking_number=after.tracking_number)
    return contracts.OrderStatusChanged(
        order_id=after.order_id,
        status=after.status.value,
        reason=after.reason,
        shipment=parcel,
        steps=[
            contracts.SagaStep(
                id=step.id, type=step.type, source=step.source, time=step.occurred_at
            )
            for step in steps
        ],
    )


def _shipment_item(item: Item) -> contracts.ShipmentItem:
    return contracts.ShipmentItem(
        sku=item.sku, name=item.name, size=item.size, quantity=item.quantity
    )


def parse_placed(data: dict[str, Any]) -> OrderPlaced:
    """order.placed's data, as its contract validated it, as the stream's first event."""
    return OrderPlaced(
        order_id=data["order_id"],
        customer=dict(data["customer"]),
        shipping_address=dict(data["shipping_address"]),
        items=tuple(
            Item(
                sku=raw["sku"],
                name=raw["name"],
                size=raw["size"],
                quantity=raw["quantity"],
                unit_price_cents=raw["unit_price_cents"],
            )
            for raw in data["items"]
        ),
        total_cents=data["total_cents"],
        currency=data["currency"],
    )
