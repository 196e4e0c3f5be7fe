"""What the payments component does with payment and refund requests: act once, record, announce."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from config.settings import get_settings
from workers.messaging import contracts
from workers.messaging.consumer import RemoteCall
from workers.messaging.database import engine_for
from workers.messaging.envelope import Envelope
from workers.messaging.errors import InvariantViolation
from workers.messaging.outbox import Outbox
from workers.payments import store
from workers.payments.gateway import (
    Charged,
    ChargeResult,
    Declined,
    NotRefunded,
    PaymentGateway,
    Refunded,
    RefundRefused,
    RefundResult,
)

COMPONENT = "payments"
# The gateway's answer to a refund of a charge it has refunded already (409), kept as the
# refund's gateway id: that refund's own id is on the earlier request that made it.
ALREADY_REFUNDED = "charge_already_refunded"
SOURCE = "/payments"
# The requests' data was checked against their contracts by the consumer (a positive amount
# among them; see workers.messaging.contracts), so every field read here is there.


def charge(gateway: PaymentGateway, event: Envelope) -> ChargeResult:
    """Ask the gateway for the money. The payment id is the idempotency key: a retry, a
    redelivery or a crash between the charge and our commit never charges twice."""
    data = event.data
    return gateway.charge(
        idempotency_key=data["payment_id"],
        order_id=data["order_id"],
        amount_cents=data["amount_cents"],
        currency=data["currency"],
        source=data["token"],
    )


def record_outcome(conn: Connection, event: Envelope, outbox: Outbox, result: ChargeResult) -> None:
    data = event.data
    ids = {"order_id": data["order_id"], "payment_id": data["payment_id"]}
    common = {**ids, "amount_cents": data["amount_cents"], "currency": data["currency"]}
    if isinstance(result, Charged):
        store.record(conn, **common, status="succeeded", charge_id=result.charge_id)
        succeeded = contracts.PaymentSucceeded(**ids, charge_id=result.charge_id)
        outbox.emit(contracts.new_event(succeeded, source=SOURCE, cause=event))
    elif isinstance(result, Declined):
        store.record(conn, **common, status="declined", reason=result.reason)
        declined = contracts.PaymentDeclined(**ids, reason=result.reason)
        outbox.emit(contracts.new_event(declined, source=SOURCE, cause=event))


def refund(gateway: PaymentGateway, conn: Connection, event: Envelope) -> RefundResult:
    """Give a charge back; the refund id is the idempotency key, so it is refunded once. A
    refusal for good is an answer (NotRefunded), not a fault: no retry, no dead letter."""
    data = event.data
    charge_id = store.charge_of(conn, data["payment_id"])
    if charge_id is None:
        raise InvariantViolation(f"payment {data['payment_id']} has no charge to refund")
    try:
        return Refunded(gateway.refund(idempotency_key=data["refund_id"], charge_id=charge_id))
    except RefundRefused as refused:
        if refused.code == ALREADY_REFUNDED:
            # The money went back under an earlier request (a parked one that went through
            # after all, or an operator's at the gateway): refunded, whichever request did it.
            return Refunded(ALREADY_REFUNDED)
        return NotRefunded(reason=refused.code)


def record_refund(conn: Connection, event: Envelope, outbox: Outbox, result: RefundResult) -> None:
    """Record a refund made, or tell orders that this one cannot be (payment.refund_failed):
    nothing is stored of a refusal here, as the payment is not refunded. A payment has one
    refund on record (``refunds.payment_id`` is unique): a second request that comes back
    refunded (the gateway refunds a charge once) is told to orders, not recorded again."""
    data = event.data
    if isinstance(result, NotRefunded):
        failed = contracts.PaymentRefundFailed(
            order_id=data["order_id"],
            payment_id=data["payment_id"],
            amount_cents=data["amount_cents"],
            refund_id=data["refund_id"],
            reason=result.reason,
        )
        outbox.emit(contracts.new_event(failed, source=SOURCE, cause=event))
        return
    if store.has_refund(conn, data["payment_id"]):
        # A second request came back refunded (the gateway's answer to the same charge): the
        # refund is on record once; orders hears again that the money went back.
        outbox.emit(contracts.new_event(_refunded(data), source=SOURCE, cause=event))
        return
    store.record_refund(
        conn,
        refund_id=data["refund_id"],
        payment_id=data["payment_id"],
        order_id=data["order_id"],
        gateway_refund_id=result.refund_id,
        amount_cents=data["amount_cents"],
    )
    outbox.emit(contracts.new_event(_refunded(data), source=SOURCE, cause=event))


def _refunded(data: dict[str, Any]) -> contracts.PaymentRefunded:
    return contracts.PaymentRefunded(
        order_id=data["order_id"],
        payment_id=data["payment_id"],
        amount_cents=data["amount_cents"],
        refund_id=data["refund_id"],
    )


@lru_cache(maxsize=1)
def gateway() -> PaymentGateway:
    """The payment gateway's client, made when the first payment needs it."""
    from workers.payments.http_gateway import HttpGateway  # only the payments worker needs it

    return HttpGateway(get_settings().gateway_url)


def _charge(event: Envelope) -> ChargeResult:
    return charge(gateway(), event)


def _refund(event: Envelope) -> RefundResult:
    with engine_for(COMPONENT).connect() as conn:
        return refund(gateway(), conn, event)


# The subscribers (see the subscription table): each calls the gateway, then records its answer.
on_payment_requested = RemoteCall(call=_charge, record=record_outcome)
on_refund_requested = RemoteCall(call=_refund, record=record_refund)
