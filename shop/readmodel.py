"""The order-status projection: the shop's view of each order, folded from the events it heard.

The live path and ``rebuild`` run the same ``apply``; only the live path moves stock, because
stock is state (pairs on a shelf), not a view that can be recomputed.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from config.settings import get_settings
from shop.tables import (
    acceptance_deadlines,
    attention,
    heard_events,
    order_counts,
    orders,
    stock,
)
from workers.messaging import tracing
from workers.messaging.contracts import UNCARRIABLE
from workers.messaging.database import upsert_insert
from workers.messaging.envelope import Envelope, as_utc, event_name
from workers.messaging.versions import upcast

# The reason of a cancellation the customer asked for (shop.cancel); the shop's own, past the
# acceptance deadline, is not theirs to see as "you asked to cancel".
CUSTOMER_REQUEST = "customer_request"
# A status only moves forward; SHIPPED and CANCELLED are final. An older status arriving late
# (a retried event overtaken by a newer one) is ignored.
RANK = {"PLACED": 0, "PAYMENT_PENDING": 1, "PAID": 2, "SHIPPED": 3, "CANCELLED": 3}
FINAL = {"SHIPPED", "CANCELLED"}
# Why orders may say an order needs an operator (order.attention_changed's reasons).
ATTENTION_REASONS = ("message_parked", "refund_failed")
PAYMENT_STATUS = {"PLACED": "pending", "PAYMENT_PENDING": "pending", "PAID": "succeeded"}


def remember(conn: Connection, event: Envelope) -> None:
    """Append to the shop's event log; the sealed card token is not kept, it is not needed."""
    body = copy.deepcopy(event.to_dict())
    body["data"].get("payment", {}).pop("token", None)
    conn.execute(
        upsert_insert(conn, heard_events).on_conflict_do_nothing(),
        {"event_id": event.id, "order_id": event.subject, "type": event.type, "event": body},
    )


def apply(conn: Connection, event: Envelope, *, live: bool) -> None:
    """Fold one event into the view (and, live, into the stock)."""
    data, at = event.data, as_utc(event.occurred_at)
    match event.name:
        case "order.placed":
            _insert_view(conn, data, at)
            _count(conn, "PLACED", None, +1)
            if live:  # a timer is state, as stock is: set once, when the order is placed
                due = at + timedelta(seconds=get_settings().accept_timeout_s)
                # With the order.placed's trace context: the timer's span continues its trace.
                deadline = {"order_id": data["order_id"], "due_at": due}
                conn.execute(
                    insert(acceptance_deadlines),
                    {**deadline, "traceparent": _context_of(event)},
                )
        case "order.status_changed":
            _apply_status(conn, data["order_id"], data["status"], data.get("reason"), at, live)
            if isinstance(data.get("shipment"), dict):
                _update(conn, data["order_id"], at, **_parcel(data["shipment"]))
            _moved_on(conn, data["order_id"], event.id, at)
        case "message.parked":
            _delay(conn, data, at)
        case "message.replayed":  # resumed: delayed again only if it fails again
            conn.execute(_REPLAYED, {"key": data["order_id"], "event_id": data["event_id"]})
        case "shipment.dispatched":  # heard before status changes carried the parcel
            _update(conn, data["order_id"], at, **_parcel(data))
        case "order.cancellation_requested" if data.get("reason") == CUSTOMER_REQUEST:
            _update(conn, data["order_id"], at, cancel_requested_at=at)
        case "order.attention_changed":
            _attend(conn, data, at)


def _context_of(event: Envelope) -> str | None:
    """The event's trace context as a deadline keeps it: a W3C traceparent, else none."""
    return event.traceparent if tracing.is_traceparent(event.traceparent) else None


def email_key(email: str) -> str:
    """How an erasure finds a customer's orders (shop.erasure.orders_of): the email without the
    spaces around it and without what no event carries (contracts.UNCARRIABLE: a direction mark
    or a control character 0.1.0 took, which an operator can neither see nor type), in Unicode's
    composed form (NFC: "Ä" typed as A and a combining diaeresis is the same letter), in
    Python's lower() in every script (SQLite's lower() folds ASCII only), which maps each letter
    to one letter, with Greek's final sigma as any other (lower() gives "Σ" at a word's end as
    "ς"). casefold() would make "straße" and "strasse", two addresses, one customer."""
    kept = _UNCARRIABLE.sub("", unicodedata.normalize("NFC", email)).strip()
    return unicodedata.normalize("NFC", kept.lower().replace(FINAL_SIGMA, SIGMA))


FINAL_SIGMA, SIGMA = "\N{GREEK SMALL LETTER FINAL SIGMA}", "\N{GREEK SMALL LETTER SIGMA}"


_UNCARRIABLE = re.compile(f"[{UNCARRIABLE}]")


def _parcel(data: dict[str, Any]) -> dict[str, Any]:
    return {"carrier": data["carrier"], "tracking_number": data["tracking_number"]}


def rebuild(conn: Connection) -> int:
    """Drop the view and fold the whole log into it again; returns the events replayed."""
    conn.execute(delete(orders))
    conn.execute(delete(order_counts))
    conn.execute(delete(attention))
    replayed = 0
    for row in conn.execute(select(heard_events.c.event).order_by(heard_events.c.seq)):
        # The log keeps each event in the version it was heard in; apply reads the current one.
        apply(conn, upcast(Envelope.from_dict(row.event)), live=False)
        replayed += 1
    return replayed


def snapshot(conn: Connection) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(select(orders).order_by(orders.c.id))]


# orders.c["items"], not .items: the column collection has an items() method of its own.
# FOR UPDATE: two of the shop worker's threads may apply PAID and SHIPPED a few ms apart; the row
# lock makes the second wait for the first, so a status never moves backwards. (SQLite has no
# row locks; its write transactions are serialised whole.)
_STATUS_FOR_UPDATE = (
    select(orders.c.status, orders.c.reason, orders.c["items"], orders.c.stock_state)
    .where(orders.c.id == bindparam("order_id"))
    .with_for_update()
)
_ACCEPTED = delete(acceptance_deadlines).where(
    acceptance_deadlines.c.order_id == bindparam("order_id")
)
# The columns named in the parameters are the ones SET; "key" is not a column.
_UPDATE = update(orders).where(orders.c.id == bindparam("key"))


def _insert_view(conn: Connection, data: dict[str, Any], at: datetime) -> None:
    conn.execute(
        insert(orders),
        {
            "id": data["order_id"],
            "status": "PLACED",
            "reason": None,
            "customer": data["customer"],
            "email_key": email_key(data["customer"]["email"]),
            "shipping_address": data["shipping_address"],
            "items": data["items"],
            "total_cents": data["total_cents"],
            "currency": data["currency"],
            "card_brand": data["payment"]["brand"],
            "card_last4": data["payment"]["last4"],
            "stock_state": "reserved",
            "created_at": at,
            "updated_at": at,
        },
    )


def _apply_status(
    conn: Connection, order_id: str, status: str, reason: str | None, at: datetime, live: bool
) -> None:
    row = conn.execute(_STATUS_FOR_UPDATE, {"order_id": order_id}).mappings().first()
    if row is None or row["status"] in FINAL or RANK[status] <= RANK[row["status"]]:
        return
    if live:  # orders has taken the order up (or ended it): nothing left to time
        conn.execute(_ACCEPTED, {"order_id": order_id})
    changes: dict[str, Any] = {"status": status, "reason": reason}
    if status in FINAL and row["stock_state"] == "reserved":
        if live:
            _settle_stock(conn, row["items"], sold=status == "SHIPPED")
        changes["stock_state"] = "sold" if status == "SHIPPED" else "released"
    _count_move(conn, (row["status"], row["reason"]), (status, reason))
    _update(conn, order_id, at, **changes)


# An order waits on the oldest of its parked messages: a second letter keeps the first's time.
_DELAY = (
    update(orders)
    .where(
        orders.c.id == bindparam("key"),
        orders.c.status.not_in(FINAL),
        or_(orders.c.delayed_since.is_(None), orders.c.delayed_since > bindparam("since")),
    )
    .values(
        delayed_since=bindparam("since"),
        delayed_queue=bindparam("queue"),
        delayed_event_id=bindparam("parked_event_id"),
    )
)
# Moved on: orders announced a step after the message was parked, or the shop applied the very
# event that was parked (its own step, replayed).
_MOVED_ON = (
    update(orders)
    .where(
        orders.c.id == bindparam("key"),
        or_(
            orders.c.delayed_since < bindparam("at"),
            orders.c.delayed_event_id == bindparam("event_id"),
        ),
    )
    .values(delayed_since=None, delayed_queue=None, delayed_event_id=None)
)


_REPLAYED = (
    update(orders)
    .where(orders.c.id == bindparam("key"), orders.c.delayed_event_id == bindparam("event_id"))
    .values(delayed_since=None, delayed_queue=None, delayed_event_id=None)
)


def _delay(conn: Connection, data: dict[str, Any], at: datetime) -> None:
    since = as_utc(msgspec.convert(data["since"], type=datetime))
    conn.execute(
        _DELAY,
        {
            "key": data["order_id"],
            "since": since,
            "queue": data["queue"],
            "parked_event_id": data.get("event_id"),
        },
    )


def _attend(conn: Connection, data: dict[str, Any], at: datetime) -> None:
    """The order needs an operator (``reason``) or no longer does (None); ``since`` is when it
    started to, kept while it goes on needing one. A notice older than the row's (by orders'
    stream version) changes nothing."""
    row = {
        "order_id": data["order_id"],
        "reason": data.get("reason"),
        "detail": data.get("detail"),
        "note": data.get("note"),
        "version": data["version"],
        "since": at if data.get("reason") else None,
        "updated_at": at,
    }
    stmt = upsert_insert(conn, attention)
    new = stmt.excluded
    since = case(
        (new.reason.is_(None), None),
        (attention.c.reason.is_(None), new.since),
        else_=attention.c.since,
    )
    columns = ("reason", "detail", "note", "version", "updated_at")
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[attention.c.order_id],
            set_={**{name: new[name] for name in columns}, "since": since},
            where=attention.c.version < new.version,
        ),
        row,
    )


def needing_attention(conn: Connection) -> list[dict[str, Any]]:
    """The orders waiting for an operator, oldest first: ``[{"order_id", "reason", "detail",
    "since" (datetime, UTC), "status", "total_cents", "currency"}]`` (status and amount from the
    view; None for an order the view lacks)."""
    query = (
        select(
            attention.c.order_id,
            attention.c.reason,
            attention.c.detail,
            attention.c.since,
            orders.c.status,
            orders.c.total_cents,
            orders.c.currency,
        )
        .select_from(attention.outerjoin(orders, orders.c.id == attention.c.order_id))
        .where(attention.c.reason.is_not(None))
        .order_by(attention.c.since, attention.c.order_id)
    )
    return [
        {**row, "since": as_utc(row["since"]) if row["since"] else None}
        for row in conn.execute(query).mappings()
    ]


def attention_counts(conn: Connection) -> dict[str, int]:
    """How many orders wait for an operator, by reason (``{"refund_failed": 2}``)."""
    query = (
        select(attention.c.reason, func.count())
        .where(attention.c.reason.is_not(None))
        .group_by(attention.c.reason)
    )
    return {reason: int(count) for reason, count in conn.execute(query).all()}


def knows(conn: Connection, order_id: str) -> bool:
    """Whether the shop's view holds the order."""
    return conn.execute(select(orders.c.id).where(orders.c.id == order_id)).first() is not None


def attention_of(conn: Connection, order_id: str) -> dict[str, Any] | None:
    """One order's row of ``attention`` (``{"reason", "detail", "note", "since", "updated_at"}``),
    None when it never needed an operator."""
    query = select(
        attention.c.reason,
        attention.c.detail,
        attention.c.note,
        attention.c.since,
        attention.c.updated_at,
    ).where(attention.c.order_id == order_id)
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def _moved_on(conn: Connection, order_id: str, event_id: str, at: datetime) -> None:
    conn.execute(_MOVED_ON, {"key": order_id, "at": at, "event_id": event_id})


def _count(conn: Connection, status: str, reason: str | None, change: int) -> None:
    """One order more (+1) or fewer (-1) in ``status`` for ``reason``, in the view's
    transaction (order_counts: what /metrics reads)."""
    stmt = upsert_insert(conn, order_counts)
    stmt = stmt.on_conflict_do_update(
        index_elements=[order_counts.c.status, order_counts.c.reason],
        set_={"orders": order_counts.c.orders + stmt.excluded.orders},
    )
    conn.execute(stmt, {"status": status, "reason": reason or "", "orders": change})


def counts(conn: Connection) -> list[tuple[str, str | None, int]]:
    """(status, reason or None, orders) for every status and reason an order is in."""
    rows = conn.execute(select(order_counts).where(order_counts.c.orders > 0))
    return [(row.status, row.reason or None, row.orders) for row in rows]


def _update(conn: Connection, order_id: str, at: datetime, **changes: Any) -> None:
    conn.execute(_UPDATE, {"key": order_id, "updated_at": at, **changes})


# Every transaction of the shop takes the rows it shares with others in one order: stock rows
# by (sku, size), then order_counts rows by (status, reason). A checkout (stock, then PLACED's
# count) and the status changes of other orders (two counts each, and a shipped order's stock)
# then wait for each other but never in a circle. Taken in the order the code happened to reach
# them (old count, new count, then stock), four such transactions deadlocked on PostgreSQL under
# a 1,000-order burst, and a checkout among them answered 503.


def _count_move(conn: Connection, old: tuple[str, str | None], new: tuple[str, str | None]) -> None:
    """One order fewer in ``old`` (status, reason), one more in ``new``: the two rows updated in
    (status, reason) order."""
    moves = sorted([(old, -1), (new, +1)], key=lambda move: (move[0][0], move[0][1] or ""))
    for (status, reason), change in moves:
        _count(conn, status, reason, change)


def _settle_stock(conn: Connection, items: list[dict[str, Any]], *, sold: bool) -> None:
    for item in sorted(items, key=lambda item: (str(item["sku"]), str(item["size"]))):
        quantity = int(item["quantity"])
        moved_to = stock.c.sold if sold else stock.c.available
        conn.execute(
            update(stock)
            .where(stock.c.sku == item["sku"], stock.c.size == item["size"])
            .values({stock.c.reserved: stock.c.reserved - quantity, moved_to: moved_to + quantity})
        )


def payment_status(status: str, reason: str | None, saga: list[dict[str, Any]]) -> str:
    """How the order's payment stands, as the customer reads it: a cancelled order's payment
    was declined, refunded (orders named payment.refunded among a step's events), being
    refunded (refund.requested named, the refund not yet), or cancelled before any charge."""
    if status != "CANCELLED":
        return PAYMENT_STATUS.get(status, "succeeded")
    if reason == "payment_declined":
        return "declined"
    heard = {event_name(entry["type"]) for entry in saga}
    if "payment.refunded" in heard:
        return "refunded"
    if "refund.requested" in heard:
        return "refunding"
    return "cancelled"


def order_view(conn: Connection, order_id: str) -> dict[str, Any] | None:
    """The order as the API and the tracking page show it, with its saga as the shop heard it."""
    row = conn.execute(select(orders).where(orders.c.id == order_id)).mappings().first()
    if row is None:
        return None
    status, reason = row["status"], row["reason"]
    saga = timeline(conn, order_id)
    return {
        "id": row["id"],
        "status": status,
        "reason": reason,
        "reason_text": reason_text(reason),
        "items": row["items"],
        "total_cents": row["total_cents"],
        "currency": row["currency"],
        "customer": {"name": row["customer"]["name"]},
        "payment": {
            "status": payment_status(status, reason, saga),
            "brand": row["card_brand"],
            "last4": row["card_last4"],
        },
        "shipment": (
            {"carrier": row["carrier"], "tracking_number": row["tracking_number"]}
            if row["tracking_number"]
            else None
        ),
        "cancellable": status not in FINAL and row["cancel_requested_at"] is None,
        "cancel_requested": row["cancel_requested_at"] is not None,
        "delayed": _delay_of(row),
        "timeline": saga,
    }


# Why an order was cancelled, as the customer reads it (the API's reason_text, the tracking
# page): every reason orders gives (workers.orders.domain.Reason).
REASONS = {
    "payment_declined": "Your card was declined",
    "customer_request": "Cancelled at your request",
    "payment_timeout": "Payment did not arrive in time",
    "shipping_timeout": "Your parcel could not leave in time; your payment is refunded",
    "invalid_order": "We could not process this order; any payment is refunded",
    "not_accepted": "We could not take this order up in time; any payment is refunded",
}


def reason_text(reason: str | None) -> str | None:
    """The reason in words; one the shop does not know yet reads as its code in words."""
    if not reason:
        return None
    return REASONS.get(reason, reason.replace("_", " ").capitalize())


# The queue a parked message was for names the step of the order that is held up.
STAGES = {"orders": "order", "payments": "payment", "shipping": "shipping", "shop": "tracking"}


def _delay_of(row: Any) -> dict[str, str] | None:
    """``{"since", "stage"}`` while a message about the order waits in the dead letters; None
    once it moved on, or ended (a final order waits on nothing)."""
    if row["delayed_since"] is None or row["status"] in FINAL:
        return None
    queue = row["delayed_queue"]
    return {"since": as_utc(row["delayed_since"]).isoformat(), "stage": STAGES.get(queue, queue)}


# heard_events.order_id is indexed: one read, however many orders the shop has heard of.
_HEARD = (
    select(heard_events.c.event)
    .where(heard_events.c.order_id == bindparam("order_id"))
    .order_by(heard_events.c.seq)
)


def timeline(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    """The order's saga as the shop heard it, in time order, from its own log only.

    The shop's own events (order.placed, a cancellation request), each notice of orders
    (order.status_changed) and the steps each names: the event orders heard and those it
    emitted. Each entry: ``{"id", "type", "source", "time"`` (ISO 8601, UTC), ``"since_placed_s"``
    (seconds after the first entry, to the millisecond)``}``; empty for an unknown order.
    """
    found: dict[str, tuple[datetime, dict[str, Any]]] = {}
    for row in conn.execute(_HEARD, {"order_id": order_id}):
        event = row.event
        # A v1 notice names no steps; an event named twice (order.placed is the shop's own and
        # the first step orders names) is listed once.
        for step in (*event["data"].get("steps", ()), event):
            if step["id"] not in found:
                moment = as_utc(msgspec.convert(step["time"], type=datetime))
                found[step["id"]] = (
                    moment,
                    {"id": step["id"], "type": step["type"], "source": step["source"]},
                )
    ordered = sorted(found.values(), key=lambda pair: pair[0])
    start = ordered[0][0] if ordered else None
    return [
        {
            **entry,
            "time": moment.isoformat(),
            "since_placed_s": round((moment - start).total_seconds(), 3) if start else 0.0,
        }
        for moment, entry in ordered
    ]
