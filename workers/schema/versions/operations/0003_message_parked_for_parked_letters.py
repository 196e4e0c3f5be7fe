"""The shop and orders hear of the messages parked before this revision: message.parked for each.

From this revision on, parking a message about an order writes a message.parked event with the
dead letter: the shop keeps it in its order view instead of reading this database, and orders
ends an order whose message can never be applied. Letters parked before it are told the same way
here: one message.parked per parked letter that names an order, written to this database's
outbox, which the relay publishes. The event is written as version 1 of message.parked reads,
spelled out: a migration does not change with the code.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import JSON, DateTime, column, table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

QUEUES = ("shop", "orders", "payments", "shipping")
# Why each was parked, from the exception it names (contracts.Fault): releases before this one
# parked invalid events, transient faults after their retries, the broker's rejections and bugs.
INVALID = ("InvalidEvent", "InvariantViolation")
TRANSIENT = ("GatewayUnavailable", "OrderNotYetKnown", "ParcelRace", "TransientError")


def fault_of(exception: str) -> str:
    if exception in INVALID:
        return "invalid"
    if exception in TRANSIENT:
        return "retries_exhausted"
    if exception == "RejectedByBroker":
        return "rejected_by_broker"
    return "bug"


TYPE = "shoeshop.message.parked.v1"

dead_letters = table(
    "dead_letters",
    column("event_id"),
    column("subject"),
    column("queue"),
    column("first_failed_at", DateTime(timezone=True)),
    column("status"),
    column("exception"),
)
outbox = table(
    "outbox",
    column("id"),
    column("type"),
    column("subject"),
    column("event", JSON),
    column("created_at", DateTime(timezone=True)),
)


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)
    rows = conn.execute(
        dead_letters.select()
        .where(dead_letters.c.status == "parked", dead_letters.c.subject.is_not(None))
        .order_by(dead_letters.c.first_failed_at)
    )
    for letter in rows.mappings():
        since = letter["first_failed_at"]
        if since.tzinfo is None:  # SQLite hands back what it stored in UTC, naive
            since = since.replace(tzinfo=UTC)
        event_id = str(uuid.uuid4())
        event = {
            "specversion": "1.0",
            "id": event_id,
            "source": "/operations",
            "type": TYPE,
            "time": now.isoformat(),
            "subject": letter["subject"],
            "datacontenttype": "application/json",
            "correlationid": letter["subject"],
            "causationid": letter["event_id"] or "",
            "data": {
                "order_id": letter["subject"],
                "queue": letter["queue"] if letter["queue"] in QUEUES else "unknown",
                "since": since.astimezone(UTC).isoformat(),
                "event_id": letter["event_id"],
                "fault": fault_of(letter["exception"]),
            },
        }
        conn.execute(
            outbox.insert().values(
                id=event_id,
                type=TYPE,
                subject=letter["subject"],
                event=event,
                created_at=now,
            )
        )


def downgrade() -> None:
    op.get_bind().execute(outbox.delete().where(outbox.c.type == TYPE))
