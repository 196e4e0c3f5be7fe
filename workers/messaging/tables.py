"""The tables the kit keeps in every component's database (outbox, inbox) and the dead letters."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table, Text

kit_metadata = MetaData()

outbox = Table(
    "outbox",
    kit_metadata,
    # seq keeps the order events were written in; the event id is written once, sent at least once.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    # Indexed: the operators' saga view finds an order's events by it.
    Column("subject", String(36), nullable=False, index=True),
    Column("event", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True, index=True),
)

inbox = Table(
    "inbox",
    kit_metadata,
    # One row per (event, consumer): the same event may be heard by two tasks of a component.
    Column("event_id", String(36), primary_key=True),
    Column("consumer", String(100), primary_key=True),
    # Indexed: the relay prunes rows past SHOESHOP_INBOX_RETENTION (workers.operations.retention).
    Column("processed_at", DateTime(timezone=True), nullable=False, index=True),
    # Which delivery finally applied it (1 = first try): the retries a saga's timeline shows.
    Column("attempts", Integer, nullable=False, default=1),
)

operations_metadata = MetaData()

dead_letters = Table(
    "dead_letters",
    operations_metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=True, index=True),
    Column("subject", String(100), nullable=True, index=True),
    Column("task", String(100), nullable=False),
    Column("queue", String(50), nullable=False),
    Column("event", JSON, nullable=True),
    Column("raw", Text, nullable=True),
    Column("exception", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("traceback", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    # parked | replayed | discarded; a row that fails again after a replay is parked again.
    Column("status", String(20), nullable=False, default="parked"),
    # The same event failing again for the same task updates its row instead of adding one.
    Index("ux_dead_letters_event_task", "event_id", "task", unique=True),
    # The parked ones, newest failure last (the admin's list, `dlq list`), and per queue (the
    # metrics): found by status however many were replayed or discarded over the years.
    Index("ix_dead_letters_status_last_failed_at", "status", "last_failed_at"),
    Index("ix_dead_letters_status_queue", "status", "queue"),
)

dead_letter_actions = Table(
    "dead_letter_actions",
    operations_metadata,
    # Every replay and discard, with what came of it: the audit trail of operators' hands.
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("dead_letter_id", String(36), nullable=False, index=True),
    Column("action", String(20), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", Text, nullable=False),
)

subscriber_lag = Table(
    "subscriber_lag",
    operations_metadata,
    # What the last redelivery sweep saw of each component queue's subscribers: the publishing
    # time of the oldest event it found unapplied (neither in the subscriber's inbox nor parked),
    # NULL when it found none. /metrics reports its age (operations.metrics).
    Column("queue", String(50), primary_key=True),
    Column("oldest_unapplied_at", DateTime(timezone=True), nullable=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)


def erased_orders_table(metadata: MetaData) -> Table:
    """``erased_orders`` in ``metadata``: the orders whose customer was erased, as a component
    that keeps personal data heard it (customer.erased; operations records it as the erasure
    runs). Ids only: an order id names no one. A message about one of them that arrives later
    (it was in flight, or retried) is then stored erased (workers.messaging.erasure.erased_among).
    """
    return Table(
        "erased_orders",
        metadata,
        Column("order_id", String(36), primary_key=True),
        Column("erased_at", DateTime(timezone=True), nullable=False),
    )


# The relay archives an outbox row about one of these erased (operations.retention), so a row
# pruned after the erasure, before its own component heard of it, is archived erased too.
erased_orders = erased_orders_table(operations_metadata)

archive_dirs = Table(
    "archive_dirs",
    operations_metadata,
    # Every directory the relay has archived pruned rows into (SHOESHOP_ARCHIVE_DIR, resolved),
    # so an erasure rewrites each, whatever its own process was told (operations.erasure).
    Column("path", String(1000), primary_key=True),
    Column("first_used_at", DateTime(timezone=True), nullable=False),
)
