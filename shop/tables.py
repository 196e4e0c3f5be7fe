"""The shop's own tables: catalogue, stock, and the order-status read model."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from workers.messaging.contracts import EMAIL_LENGTH, NOTE_LENGTH, REASON_LENGTH

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("brand", String(50), nullable=False),
    Column("colour", String(30), nullable=False),
    Column("hex", String(7), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("position", Integer, nullable=False),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("size", String(8), primary_key=True),
    # initial = available + reserved + sold, always; none of them may go below zero.
    Column("available", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, default=0),
    Column("sold", Integer, nullable=False, default=0),
    CheckConstraint("available >= 0 AND reserved >= 0 AND sold >= 0", name="stock_not_negative"),
)

orders = Table(
    "orders",
    metadata,
    # A projection of the events the shop heard (heard_events): dropped and rebuilt by replay.
    Column("id", String(36), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("reason", String(50), nullable=True),
    Column("customer", JSON, nullable=False),
    # The customer's email as an erasure looks it up (readmodel.email_key): one lower() may
    # give two characters for one, hence twice the contracts' length. NULL in no row since
    # revision 0007 filled it.
    Column("email_key", String(2 * EMAIL_LENGTH), nullable=True, index=True),
    Column("shipping_address", JSON, nullable=False),
    Column("items", JSON, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("card_brand", String(20), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("carrier", String(50), nullable=True),
    Column("tracking_number", String(50), nullable=True),
    # reserved → released (cancelled) or sold (shipped): the stock moves exactly once.
    Column("stock_state", String(10), nullable=False, default="reserved"),
    Column("cancel_requested_at", DateTime(timezone=True), nullable=True),
    # A message about the order waits in the dead letters (message.parked): since when, on which
    # component's queue, and the parked event's id; cleared when the order moves on.
    Column("delayed_since", DateTime(timezone=True), nullable=True),
    Column("delayed_queue", String(50), nullable=True),
    Column("delayed_event_id", String(36), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The admin's chart of orders shipped per minute reads the recent SHIPPED ones.
    Index("ix_orders_status_updated_at", "status", "updated_at"),
)

order_counts = Table(
    "order_counts",
    metadata,
    # How many orders are in each status (and, cancelled, for each reason; "" for none), kept
    # with the view in the same transactions: /metrics reads a few rows, not every order.
    Column("status", String(20), primary_key=True),
    Column("reason", String(50), primary_key=True),
    Column("orders", Integer, nullable=False),
)

attention = Table(
    "attention",
    metadata,
    # Orders a compensation of which failed and waits for an operator (order.attention_changed):
    # ``reason`` while it does, NULL once settled. A row stays once written, so a notice that
    # arrives late (``version``, orders' stream version) never undoes a newer one; the table
    # grows with such orders, not with all orders. Part of the view: rebuilt with it.
    Column("order_id", String(36), primary_key=True),
    Column("reason", String(REASON_LENGTH), nullable=True, index=True),
    Column("detail", String(NOTE_LENGTH), nullable=True),
    Column("note", String(NOTE_LENGTH), nullable=True),
    Column("version", Integer, nullable=False),
    Column("since", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

checkouts = Table(
    "checkouts",
    metadata,
    # A client's Idempotency-Key and the order it placed: a retried POST finds it here.
    Column("idempotency_key", String(200), primary_key=True),
    # Indexed: an erasure finds its orders' checkouts by it.
    Column("order_id", String(36), nullable=False, index=True),
    # HMAC-SHA256 of the request body under the secret key (hex): the same key sent with another
    # body is refused. Never a plain hash: the body holds a card number. NULL for checkouts made
    # before revision 0002 of the shop's schema, which are taken as matching; "erased" for an
    # erased customer's, which matches no body.
    Column("body_hmac", String(64), nullable=True),
)

acceptance_deadlines = Table(
    "acceptance_deadlines",
    metadata,
    # An order the shop placed and orders has not taken up yet (still PLACED, stock reserved):
    # past due_at the shop asks orders to cancel it (shop.acceptance). Durable, as every timer.
    Column("order_id", String(36), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
    # The traceparent of the order.placed that set it (shop.readmodel), which the timer's span
    # continues; NULL while tracing is off and for deadlines set before migration 0009.
    Column("traceparent", String(55), nullable=True),
)

heard_events = Table(
    "heard_events",
    metadata,
    # The shop's own event log: what it emitted (order.placed) and every event it applied, in
    # the order it applied them. The order-status projection is a fold over this log.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("order_id", String(36), nullable=False, index=True),
    Column("type", String(100), nullable=False),
    Column("event", JSON, nullable=False),
)
