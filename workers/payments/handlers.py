"""What the payments component does with payment and refund requests: act once, record, announce."""

from __future__ import annotations

from sqlalchemy import Connection

from workers.messaging import contracts
from workers.messaging.envelope import Envelope
from workers.messaging.errors import InvariantViolation
from workers.messaging.outbox import Outbox
from workers.payments import store
from workers.payments.gateway import Charged, ChargeResult, Declined, PaymentGateway

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


def refund(gateway: PaymentGateway, conn: Connection, event: Envelope) -> str:
    """Give a charge back; the refund id is the idempotency key, so it is refunded once."""
    data = event.data
    charge_id = store.charge_of(conn, data["payment_id"])
    if charge_id is None:
        raise InvariantViolation(f"payment {data['payment_id']} has no charge to refund")
    return gateway.refund(idempotency_key=data["refund_id"], charge_id=charge_id)


def record_refund(
    conn: Connection, event: Envelope, outbox: Outbox, gateway_refund_id: str
) -> None:
    data = event.data
    store.record_refund(
        conn,
        refund_id=data["refund_id"],
        payment_id=data["payment_id"],
        order_id=data["order_id"],
        gateway_refund_id=gateway_refund_id,
        amount_cents=data["amount_cents"],
    )
    refunded = contracts.PaymentRefunded(
        order_id=data["order_id"],
        payment_id=data["payment_id"],
        amount_cents=data["amount_cents"],
        refund_id=data["refund_id"],
    )
    outbox.emit(contracts.new_event(refunded, source=SOURCE, cause=event))
