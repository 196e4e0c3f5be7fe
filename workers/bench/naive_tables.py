"""The naive shop's one database: catalogue, stock, orders, payments and shipments, side by side.

One SQLite file (``naive.db`` under the data dir) or one PostgreSQL schema (``naive``), as the
system's databases are, made fresh by ``prepare`` with ``create_all`` as a tutorial shop makes
them: no migrations, no outbox, no inbox, no event log. The bench's own reads are here too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
)

from config.settings import Settings
from shop.seed import CATALOGUE, CURRENCY, PAIRS_PER_SIZE, SIZES
from workers.messaging.database import begin_write, open_unchecked
from workers.messaging.envelope import as_utc

DATABASE = "naive"
PLACED, PAYMENT_PENDING, PAID, SHIPPED, CANCELLED = (
    "PLACED",
    "PAYMENT_PENDING",
    "PAID",
    "SHIPPED",
    "CANCELLED",
)

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("size", String(8), primary_key=True),
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("sold", Integer, nullable=False),
    CheckConstraint("available >= 0 AND reserved >= 0 AND sold >= 0", name="stock_not_negative"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(20), nullable=False, index=True),
    Column("reason", String(50), nullable=True),
    Column("customer", JSON, nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("items", JSON, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    # The card sealed for the gateway, as the system's order.placed carries it: never a number.
    Column("card_token", Text, nullable=False),
    Column("card_brand", String(20), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("shipped_at", DateTime(timezone=True), nullable=True),
)

payments = Table(
    "payments",
    metadata,
    # The payment id is the gateway's idempotency key, as in the system.
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("charge_id", String(64), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False, unique=True),
    Column("carrier", String(50), nullable=False),
    Column("tracking_number", String(50), nullable=False),
    Column("dispatched_at", DateTime(timezone=True), nullable=False),
)


def open_engine(settings: Settings | None = None) -> Engine:
    """A new engine on the naive database of ``settings`` (default: this process's)."""
    return open_unchecked(DATABASE, settings)


def prepare(db: Engine) -> None:
    """A fresh database: every table dropped and made again, the catalogue stocked in full."""
    with begin_write(db) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{DATABASE}"'))
        metadata.drop_all(conn)
        metadata.create_all(conn)
        conn.execute(
            insert(products),
            [
                {"sku": s.sku, "name": s.name, "price_cents": s.price_cents, "currency": CURRENCY}
                for s in CATALOGUE
            ],
        )
        conn.execute(
            insert(stock),
            [
                {"sku": s.sku, "size": size, "available": PAIRS_PER_SIZE, "reserved": 0, "sold": 0}
                for s in CATALOGUE
                for size in SIZES
            ],
        )


def catalogue(db: Engine) -> list[dict[str, Any]]:
    """The skus and sizes in stock, in the shape of the shop's ``GET /api/products``."""
    with db.connect() as conn:
        rows = conn.execute(select(stock.c.sku, stock.c.size, stock.c.available)).all()
    by_sku: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_sku.setdefault(row.sku, []).append({"size": row.size, "available": row.available})
    return [{"sku": sku, "sizes": sizes} for sku, sizes in by_sku.items()]


def shipped_moments(db: Engine, order_ids: set[str]) -> dict[str, tuple[float, float]]:
    """(placed, shipped) in epoch seconds of those of the orders that have shipped."""
    with db.connect() as conn:
        rows = conn.execute(
            select(orders.c.id, orders.c.placed_at, orders.c.shipped_at).where(
                orders.c.status == SHIPPED
            )
        ).all()
    return {
        row.id: (_epoch(row.placed_at), _epoch(row.shipped_at))
        for row in rows
        if row.id in order_ids
    }


def _epoch(moment: datetime) -> float:
    return as_utc(moment).timestamp()
