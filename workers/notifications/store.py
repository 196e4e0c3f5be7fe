"""The notifications component's tables: whom to write about each order, and what was sent.

``recipients`` is what ``order.placed`` carried that later mails need (event-carried state
transfer: no other component is asked); ``mails`` is one row per mail sent, so an order gets one
mail of each kind however often its status is announced. A mail's row holds no personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from workers.messaging.contracts import EMAIL_LENGTH, NAME_LENGTH
from workers.messaging.erasure import ERASED, ERASED_EMAIL
from workers.messaging.errors import TransientError
from workers.messaging.tables import erased_orders_table

metadata = MetaData()

# Orders whose customer.erased came here: data about them that arrives later is kept erased.
erased_orders = erased_orders_table(metadata)

CONFIRMATION, SHIPPED, CANCELLED, REFUNDED = "confirmation", "shipped", "cancelled", "refunded"

recipients = Table(
    "recipients",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("email", String(EMAIL_LENGTH), nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("card_brand", String(20), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
)

mails = Table(
    "mails",
    metadata,
    # <event id@sender's domain>: the same event always gives the same Message-ID.
    Column("message_id", String(300), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("kind", String(20), nullable=False),
    # The event whose delivery claimed this mail: only it sends it (again, on a redelivery).
    Column("event_id", String(36), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    # Set once the server took it and the event's unit of work committed; NULL while it is
    # being sent, or waits parked in the dead letters.
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # One mail of each kind per order; also the index that finds an order's mails.
    UniqueConstraint("order_id", "kind", name="ux_mails_order_kind"),
)


@dataclass(frozen=True)
class Recipient:
    order_id: str
    name: str
    email: str
    total_cents: int
    currency: str
    card_brand: str
    card_last4: str

    @property
    def erased(self) -> bool:
        """The customer asked to be forgotten: nobody is left to write to."""
        return self.email == ERASED_EMAIL


_FIND = select(
    recipients.c.order_id,
    recipients.c.name,
    recipients.c.email,
    recipients.c.total_cents,
    recipients.c.currency,
    recipients.c.card_brand,
    recipients.c.card_last4,
).where(recipients.c.order_id == bindparam("order_id"))
_CLAIMANT = select(mails.c.event_id).where(
    mails.c.order_id == bindparam("order_id"), mails.c.kind == bindparam("kind")
)


class MailRace(TransientError):
    """Two events about one order claimed a mail of the same kind, or added its recipient, at
    once; the retry finds the row the other wrote."""


def recipient(conn: Connection, order_id: str) -> Recipient | None:
    row = conn.execute(_FIND, {"order_id": order_id}).first()
    return None if row is None else Recipient(*row)


def add_recipient(conn: Connection, placed_at: datetime, who: Recipient) -> None:
    """Keep whom to write to about the order, once (a second order.placed of it changes nothing).
    Raises MailRace when another transaction added it first."""
    if recipient(conn, who.order_id) is not None:
        return
    try:
        conn.execute(insert(recipients), {**vars(who), "placed_at": placed_at})
    except IntegrityError as exc:
        raise MailRace(f"order {who.order_id} got its recipient meanwhile") from exc


def claimant(conn: Connection, order_id: str, kind: str) -> str | None:
    """The event whose delivery claimed the order's mail of this kind, if one did."""
    return conn.execute(_CLAIMANT, {"order_id": order_id, "kind": kind}).scalar()


def claim(
    conn: Connection, *, message_id: str, order_id: str, kind: str, event_id: str, now: datetime
) -> bool:
    """Claim the order's one mail of this kind for ``event_id``, in the caller's transaction,
    before it is sent: two events about one order (two CANCELLED notices handled at once) can
    then not both send it. True when the claim is (or already was) this event's. Raises
    MailRace when another transaction is claiming it at this moment (the retry sees whose)."""
    holder = claimant(conn, order_id, kind)
    if holder is not None:
        return holder == event_id
    try:
        conn.execute(
            insert(mails),
            {
                "message_id": message_id,
                "order_id": order_id,
                "kind": kind,
                "event_id": event_id,
                "claimed_at": now,
                "sent_at": None,
            },
        )
    except IntegrityError as exc:
        raise MailRace(f"order {order_id}: its {kind} mail is being claimed meanwhile") from exc
    return True


def mark_sent(conn: Connection, message_id: str, now: datetime) -> None:
    conn.execute(update(mails).where(mails.c.message_id == message_id).values(sent_at=now))


def erase(conn: Connection, order_ids: Sequence[str]) -> int:
    """Forget the customer of these orders: name and email erased, the order's facts kept.
    Returns how many recipients were erased."""
    result = conn.execute(
        update(recipients)
        .where(recipients.c.order_id.in_(list(order_ids)))
        .values(name=ERASED, email=ERASED_EMAIL)
    )
    return int(result.rowcount or 0)
