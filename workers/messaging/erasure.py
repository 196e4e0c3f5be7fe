"""Erasing a customer: the personal fields of an event, or of a stored copy of one, replaced by
values that still satisfy the contracts, so an erased event can still be read, replayed and
folded (a "forgettable payload", overwritten where it is kept).

Personal data in this shop's events: the customer's name and email, the shipping address (its
country stays: it picks the carrier and names no one) and the sealed card (``token``). Amounts,
items, statuses and times are the order's facts and stay.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

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
