"""Read models the orders component keeps from its event log: an order list and sales figures.

Each is updated in the same transaction as the append (live), and can be dropped and rebuilt by
replaying every stream (``rebuild``); both paths run the same ``apply``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    select,
    update,
)

from workers.messaging.database import upsert_insert
from workers.messaging.erasure import ERASED
from workers.orders import domain, store
from workers.orders.domain import Order
from workers.orders.events import DomainEvent, OrderPlaced, OrderShipped

order_list = Table(
    "order_list",
    store.metadata,
    Column("order_id", String(36), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("reason", String(50), nullable=True),
    Column("customer_name", String(100), nullable=False),
    Column("pairs", Integer, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

sales = Table(
    "sales",
    store.metadata,
    Column("sku", String(32), primary_key=True),
    Column("size", String(8), primary_key=True),
    Column("pairs", Integer, nullable=False),
    Column("revenue_cents", Integer, nullable=False),
)

_SET_STATUS = update(order_list).where(order_list.c.order_id == bindparam("key"))

Apply = Callable[[Connection, DomainEvent, Order, datetime], None]


def apply_order_list(conn: Connection, event: DomainEvent, after: Order, at: datetime) -> None:
    if isinstance(event, OrderPlaced):
        conn.execute(
            order_list.insert(),
            {
                "order_id": after.order_id,
                "status": after.status.value,
                "reason": after.reason,
                "customer_name": after.customer.get("name", ""),
                "pairs": sum(item.quantity for item in after.items),
                "total_cents": after.total_cents,
                "currency": after.currency,
                "placed_at": at,
                "updated_at": at,
            },
        )
        return
    conn.execute(
        _SET_STATUS,
        {
            "key": after.order_id,
            "status": after.status.value,
            "reason": after.reason,
            "updated_at": at,
        },
    )


def apply_sales(conn: Connection, event: DomainEvent, after: Order, at: datetime) -> None:
    """A pair counts as sold when it ships, not when it is ordered."""
    if not isinstance(event, OrderShipped):
        return
    stmt = upsert_insert(conn, sales)
    add_up = stmt.on_conflict_do_update(
        index_elements=[sales.c.sku, sales.c.size],
        set_={
            "pairs": sales.c.pairs + stmt.excluded.pairs,
            "revenue_cents": sales.c.revenue_cents + stmt.excluded.revenue_cents,
        },
    )
    for item in after.items:
        conn.execute(
            add_up,
            {
                "sku": item.sku,
                "size": item.size,
                "pairs": item.quantity,
                "revenue_cents": item.line_total_cents,
            },
        )


PROJECTIONS: dict[str, tuple[Table, Apply]] = {
    "order_list": (order_list, apply_order_list),
    "sales": (sales, apply_sales),
}


def erase_personal_data(conn: Connection, order_ids: Sequence[str]) -> None:
    """The order list names no erased customer (a rebuild folds the erased stream alike)."""
    conn.execute(
        update(order_list)
        .where(order_list.c.order_id.in_(list(order_ids)))
        .values(customer_name=ERASED)
    )


def apply_live(
    conn: Connection, before: Order | None, new_events: Sequence[DomainEvent], at: datetime
) -> None:
    """Bring every projection up to date with events just appended."""
    state = before
    for event in new_events:
        state = domain.evolve(state, event)
        for _table, apply in PROJECTIONS.values():
            apply(conn, event, state, at)


def rebuild(conn: Connection, names: Sequence[str] | None = None) -> int:
    """Drop the projections' rows and replay every stream into them; returns events replayed."""
    chosen = {name: PROJECTIONS[name] for name in (names or PROJECTIONS)}
    for table, _apply in chosen.values():
        conn.execute(delete(table))
    replayed = 0
    for _stream, events in store.all_streams(conn):
        state: Order | None = None
        for event, at in events:
            state = domain.evolve(state, event)
            for _table, apply in chosen.values():
                apply(conn, event, state, at)
            replayed += 1
    return replayed


def snapshot(conn: Connection, name: str) -> list[tuple[object, ...]]:
    """A projection's rows in a stable order, to compare a live one with a rebuilt one."""
    table = PROJECTIONS[name][0]
    query = select(table).order_by(*table.primary_key.columns)
    return [tuple(row) for row in conn.execute(query)]
