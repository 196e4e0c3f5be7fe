"""One timer table for every status orders must see an order leave: payment_deadlines becomes
deadlines, which says whose status each deadline is (PAYMENT_PENDING or PAID).

The payment deadlines move over as they are. A paid order has had no deadline before: each one
still PAID (read from the order_list projection, which the same transactions keep) gets the
default two days from the upgrade, not from when it was paid, so none is stopped by the upgrade.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# config.settings.DEFAULT_SHIP_TIMEOUT_S when this was written; a migration does not change
# with the code.
SHIP_TIMEOUT = timedelta(days=2)

deadlines = sa.table(
    "deadlines",
    sa.column("order_id", sa.String),
    sa.column("status", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
)
payment_deadlines = sa.table(
    "payment_deadlines",
    sa.column("order_id", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
)
order_list = sa.table("order_list", sa.column("order_id", sa.String), sa.column("status"))


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("order_id", sa.String(length=36), primary_key=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deadlines_due_at", "deadlines", ["due_at"])
    conn = op.get_bind()
    rows = [
        {"order_id": row.order_id, "status": "PAYMENT_PENDING", "due_at": row.due_at}
        for row in conn.execute(sa.select(payment_deadlines))
    ]
    due = datetime.now(UTC) + SHIP_TIMEOUT
    rows += [
        {"order_id": row.order_id, "status": "PAID", "due_at": due}
        for row in conn.execute(
            sa.select(order_list.c.order_id).where(order_list.c.status == "PAID")
        )
    ]
    if rows:
        conn.execute(deadlines.insert(), rows)
    op.drop_index("ix_payment_deadlines_due_at", table_name="payment_deadlines")
    op.drop_table("payment_deadlines")


def downgrade() -> None:
    op.create_table(
        "payment_deadlines",
        sa.Column("order_id", sa.String(length=36), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_payment_deadlines_due_at", "payment_deadlines", ["due_at"])
    conn = op.get_bind()
    rows = [
        {"order_id": row.order_id, "due_at": row.due_at}
        for row in conn.execute(sa.select(deadlines).where(deadlines.c.status == "PAYMENT_PENDING"))
    ]
    if rows:
        conn.execute(payment_deadlines.insert(), rows)
    op.drop_index("ix_deadlines_due_at", table_name="deadlines")
    op.drop_table("deadlines")
