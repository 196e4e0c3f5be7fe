"""What the notifications component does: write to the customer when their order moves.

Each subscriber is a RemoteCall (workers.messaging.consumer): the mail is sent outside any
transaction, then recorded with the inbox row in one. A crash between the server's acceptance
and the commit sends the mail again on redelivery, with the same Message-ID (derived from the
event id), which mail systems recognise as the one they already have. Nothing here emits an
event or waits on another component: a mail that cannot be sent is retried and parked, and
never holds up or cancels an order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from config.settings import get_settings
from workers.messaging.consumer import RemoteCall
from workers.messaging.database import engine_for, transaction
from workers.messaging.envelope import Envelope, event_name, utcnow
from workers.messaging.erasure import (
    ERASED,
    ERASED_EMAIL,
    erased_among,
    lock_orders,
    remember_erased,
)
from workers.messaging.errors import TransientError
from workers.messaging.outbox import Outbox
from workers.notifications import mails, smtp, store
from workers.notifications.store import Recipient

COMPONENT = "notifications"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """A mail the server accepted: what ``record`` writes down."""

    kind: str
    message_id: str
    order_id: str


class RecipientNotYetKnown(TransientError):
    """An order's status came before its order.placed was recorded here (a retry or a restart
    can reorder them); the retry finds the recipient."""


def recipient_of(data: dict[str, object]) -> Recipient:
    """The recipient an order.placed carries (its data checked by the contract)."""
    customer, payment = data["customer"], data["payment"]
    assert isinstance(customer, dict) and isinstance(payment, dict)
    return Recipient(
        order_id=str(data["order_id"]),
        name=customer["name"],
        email=customer["email"],
        total_cents=int(str(data["total_cents"])),
        currency=str(data["currency"]),
        card_brand=payment["brand"],
        card_last4=payment["last4"],
    )


def deliver(mail: mails.Mail, who: Recipient, event: Envelope) -> Sent | None:
    """Send ``mail`` unless its customer was erased or another event claimed the order's mail
    of this kind. The claim is committed before the mail is sent, and a redelivery of the same
    event finds its own claim and sends again, with the same Message-ID.

    The claim is where an erasure and a mail meet: ``who`` may have been read before the
    customer.erased committed, so the claim's transaction takes the order's erasure lock and
    asks again. An erasure committed first: no mail, even for an event that claimed it before
    (its redelivery finds the customer gone). A claim committed first: the mail is on its way,
    as good as sent, which erasure cannot reach (README, What an erasure does)."""
    if who.erased:
        log.info("order %s: its customer was erased, no %s mail", who.order_id, mail.kind)
        return None
    settings = get_settings()
    if settings.smtp_url is None:  # the worker refuses to start without it (schema.guard)
        raise smtp.MailServerUnavailable("SHOESHOP_SMTP_URL is not set")
    message = mails.message(
        mail, who, event_id=event.id, sender=settings.mail_from, public_url=settings.public_url
    )
    message_id = str(message["Message-ID"])
    with transaction(COMPONENT) as conn:
        lock_orders(conn, [who.order_id])
        if erased_among(conn, store.erased_orders, [who.order_id]):
            log.info("order %s: customer erased meanwhile, no %s mail", who.order_id, mail.kind)
            return None
        ours = store.claim(
            conn,
            message_id=message_id,
            order_id=who.order_id,
            kind=mail.kind,
            event_id=event.id,
            now=utcnow(),
        )
    if not ours:
        return None
    smtp.send(settings.smtp_url, message)
    return Sent(mail.kind, message_id, who.order_id)


def record(conn: Connection, event: Envelope, _outbox: Outbox, sent: Sent | None) -> None:
    if sent is not None:
        store.mark_sent(conn, sent.message_id, utcnow())


def known_recipient(order_id: str) -> Recipient:
    with engine_for(COMPONENT).connect() as conn:
        who = store.recipient(conn, order_id)
    if who is None:
        raise RecipientNotYetKnown(f"order {order_id}: its order.placed is not recorded yet")
    return who


def confirm(event: Envelope) -> Sent | None:
    """Keep the recipient first, in a transaction of its own (a second time changes nothing):
    the order's later mails need it even while its confirmation cannot be sent. The mail goes
    to the recipient as kept, so a customer erased meanwhile (or before the order came: it is
    then kept erased) is not written to."""
    given = recipient_of(event.data)
    with transaction(COMPONENT) as conn:
        lock_orders(conn, [given.order_id])
        if erased_among(conn, store.erased_orders, [given.order_id]):
            given = replace(given, name=ERASED, email=ERASED_EMAIL)
        store.add_recipient(conn, event.occurred_at, given)
        who = store.recipient(conn, given.order_id) or given
    return deliver(mails.confirmation(who, event.data["items"]), who, event)


def tell_status(event: Envelope) -> Sent | None:
    """SHIPPED: the parcel, carrier and tracking number. CANCELLED: the reason, and the refund
    when there is one (orders names the step's events: refund.requested, payment.refunded); a
    refund that comes after the cancellation mail (a payment that arrived after its deadline)
    gets a mail of its own. Any other status: nothing (the confirmation said what comes next).
    A v1 notice names no steps: its cancellation says what the reason implies of the money."""
    data = event.data
    status = data["status"]
    if status not in ("SHIPPED", "CANCELLED"):
        return None
    who = known_recipient(data["order_id"])
    if status == "SHIPPED":
        parcel = data.get("shipment") or {}
        if not parcel:
            log.warning("order %s: SHIPPED names no parcel, no mail", who.order_id)
            return None
        return deliver(mails.shipped(who, parcel["carrier"], parcel["tracking_number"]), who, event)
    steps = {event_name(step["type"]) for step in data.get("steps") or ()}
    refund = (
        mails.REFUNDED_NOW
        if "payment.refunded" in steps
        else mails.REFUNDING
        if "refund.requested" in steps
        else None
    )
    with engine_for(COMPONENT).connect() as conn:
        holder = store.claimant(conn, who.order_id, store.CANCELLED)
    if holder in (None, event.id):
        return deliver(mails.cancelled(who, data.get("reason"), refund), who, event)
    if refund == mails.REFUNDED_NOW:
        return deliver(mails.refunded(who, who.total_cents), who, event)
    return None


def on_customer_erased(conn: Connection, event: Envelope, _outbox: Outbox) -> None:
    """Forget the name and email kept for the orders named; later mails about them are not
    sent (nobody is left to write to). The orders are remembered as erased, so one whose
    order.placed comes afterwards is kept erased and gets no mail."""
    order_ids = list(event.data["order_ids"])
    lock_orders(conn, order_ids)
    remember_erased(conn, store.erased_orders, order_ids, utcnow())
    store.erase(conn, order_ids)


on_order_placed = RemoteCall(call=confirm, record=record)
on_order_status_changed = RemoteCall(call=tell_status, record=record)
