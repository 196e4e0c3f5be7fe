"""Erasing a customer: the personal fields of an event, or of a stored copy of one, replaced by
values that still satisfy the contracts, so an erased event can still be read, replayed and
folded (a "forgettable payload", overwritten where it is kept).

Personal data in this shop's events: the customer's name and email, the shipping address (its
country stays: it picks the carrier and names no one) and the sealed card (``token``). Amounts,
items, statuses and times are the order's facts and stay.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, text, update

from workers.messaging.database import upsert_insert
from workers.messaging.tables import outbox

ERASED = "erased"
ERASED_EMAIL = "erased@erased.invalid"  # RFC 2606: .invalid is never anyone's domain


def erased_address(address: Any) -> dict[str, str]:
    """An address with nothing left of it but its country."""
    country = address.get("country", "") if isinstance(address, dict) else ""
    return {"line1": ERASED, "city": ERASED, "postal_code": ERASED, "country": country}


def erase_data(data: Any) -> Any:
    """``data`` (an event's data, or a stored record of the same fields) without its personal
    fields; anything else as it was."""
    if not isinstance(data, dict):
        return data
    erased = copy.deepcopy(data)
    if "customer" in erased:
        erased["customer"] = {"name": ERASED, "email": ERASED_EMAIL}
    if "shipping_address" in erased:
        erased["shipping_address"] = erased_address(erased["shipping_address"])
    if "token" in erased:
        erased["token"] = ERASED
    if isinstance(erased.get("payment"), dict) and "token" in erased["payment"]:
        erased["payment"]["token"] = ERASED
    return erased


def personal_values(data: Any) -> list[str]:
    """The personal strings ``data`` (an event's data) holds, as ``erase_data`` finds them:
    name, email, the address's lines, the sealed card."""
    if not isinstance(data, dict):
        return []
    found: list[Any] = []
    customer, address = data.get("customer"), data.get("shipping_address")
    if isinstance(customer, dict):
        found += [customer.get("name"), customer.get("email")]
    if isinstance(address, dict):
        found += [address.get(key) for key in ("line1", "city", "postal_code")]
    payment = data.get("payment")
    found += [data.get("token"), payment.get("token") if isinstance(payment, dict) else None]
    return [value for value in found if isinstance(value, str) and value not in ("", ERASED)]


# A value this short (a postal code "10") would blot out line numbers and words in a text it is
# cut from, and on its own names no one.
SHORTEST_REDACTED = 3


def redact(text: str, values: Sequence[str], mark: str = ERASED) -> str:
    """``text`` with each of ``values`` (any case) replaced by ``mark``: what a failure's message
    or traceback quoted of an erased event, as it was or as a repr or JSON escapes it (a
    server's answer in bytes shows "ë" as \\xc3\\xab)."""
    spellings = {form for value in values for form in _spellings(value)}
    for form in sorted(spellings, key=len, reverse=True):
        if len(form) >= SHORTEST_REDACTED:
            text = re.sub(re.escape(form), mark, text, flags=re.IGNORECASE)
    return text


def _spellings(value: str) -> set[str]:
    """``value`` and the escaped forms a repr of it (as text, as UTF-8 bytes) or JSON writes,
    and each of those as a repr of text holding it escapes it again (a JSON document quoted in
    a repr: ``\\u00eb``, ``\\'``)."""
    once = {
        value,
        ascii(value)[1:-1],
        repr(value.encode("utf-8"))[2:-1],
        json.dumps(value)[1:-1],
    }
    return once | {_in_repr(form) for form in once}


def _in_repr(text: str) -> str:
    """``text`` as a repr of a string holding it writes it, without the quotes: backslashes
    doubled, and quotes escaped, as a repr quoted in single quotes does."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def erase_event(body: Any) -> Any:
    """An event body (a CloudEvent as a dict) with its data erased (``erase_data``)."""
    if not isinstance(body, dict) or "data" not in body:
        return body
    return {**body, "data": erase_data(body["data"])}


def erase_outbox(conn: Connection, order_ids: Sequence[str]) -> int:
    """Erase the events about ``order_ids`` kept in this component's outbox (found by subject,
    indexed), in the caller's transaction; returns how many rows were rewritten."""
    rows = conn.execute(
        select(outbox.c.seq, outbox.c.event).where(outbox.c.subject.in_(list(order_ids)))
    ).all()
    for row in rows:
        conn.execute(_REWRITE, {"key": row.seq, "event": erase_event(row.event)})
    return len(rows)


_REWRITE = update(outbox).where(outbox.c.seq == bindparam("key"))


def remember_erased(conn: Connection, table: Table, order_ids: Sequence[str], at: datetime) -> None:
    """Record these orders as erased in ``table`` (tables.erased_orders_table), in the caller's
    transaction; an order already recorded stays as it was."""
    if order_ids:
        conn.execute(
            upsert_insert(conn, table).on_conflict_do_nothing(),
            [{"order_id": order_id, "erased_at": at} for order_id in sorted(set(order_ids))],
        )


def erased_among(conn: Connection, table: Table, order_ids: Sequence[str]) -> set[str]:
    """Those of ``order_ids`` recorded in ``table`` as erased (found by its primary key)."""
    if not order_ids:
        return set()
    found = select(table.c.order_id).where(table.c.order_id.in_(sorted(set(order_ids))))
    return set(conn.execute(found).scalars())


def lock_orders(conn: Connection, order_ids: Sequence[str]) -> None:
    """Hold, until the caller's transaction ends, a lock per order that an erasure and the
    arrival of the order's data both take: one of the two then sees the other's commit (the
    erasure the data to erase, or the data its erasure's record). PostgreSQL: a transaction
    advisory lock per order id, taken in one order so two erasures never deadlock. SQLite
    needs none: its write transactions run one at a time, taken up front (database.begin_write).
    """
    if conn.dialect.name != "postgresql":
        return
    for order_id in sorted(set(order_ids)):
        conn.execute(_ADVISORY_LOCK, {"key": f"erasure:{order_id}"})


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
