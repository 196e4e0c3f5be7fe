"""Reads that cost the same however many orders there are: the order counts /metrics reports
are kept in order_counts with the view (filled here from the orders already there); indexes for
the admin's chart (orders by created_at, and by status and updated_at) and for the saga view
(outbox.subject)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

orders = sa.table("orders", sa.column("status", sa.String), sa.column("reason", sa.String))
order_counts = sa.table(
    "order_counts",
    sa.column("status", sa.String),
    sa.column("reason", sa.String),
    sa.column("orders", sa.Integer),
)


def upgrade() -> None:
    op.create_table(
        "order_counts",
        sa.Column("status", sa.String(length=20), primary_key=True),
        sa.Column("reason", sa.String(length=50), primary_key=True),
        sa.Column("orders", sa.Integer(), nullable=False),
    )
    conn = op.get_bind()
    reason = sa.func.coalesce(orders.c.reason, "")
    counted = conn.execute(
        sa.select(orders.c.status, reason, sa.func.count()).group_by(orders.c.status, reason)
    ).all()
    rows = [{"status": status, "reason": why, "orders": n} for status, why, n in counted]
    if rows:
        conn.execute(order_counts.insert(), rows)
    op.create_index("ix_orders_created_at", "orders", ["created_at"])
    op.create_index("ix_orders_status_updated_at", "orders", ["status", "updated_at"])
    op.create_index("ix_outbox_subject", "outbox", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_outbox_subject", table_name="outbox")
    op.drop_index("ix_orders_status_updated_at", table_name="orders")
    op.drop_index("ix_orders_created_at", table_name="orders")
    op.drop_table("order_counts")
