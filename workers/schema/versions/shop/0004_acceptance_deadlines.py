"""The acceptance deadline: how long the shop holds an order's stock for orders to take it up.

Each order still PLACED at the upgrade gets the default deadline from the upgrade on (not from
its placing: an order waiting on a broker that was down must not be cancelled by the upgrade).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# config.settings.DEFAULT_ACCEPT_TIMEOUT_S when this was written; a migration does not change
# with the code.
ACCEPT_TIMEOUT = timedelta(minutes=10)

deadlines = sa.table(
    "acceptance_deadlines",
    sa.column("order_id", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
)
orders = sa.table("orders", sa.column("id", sa.String), sa.column("status", sa.String))


def upgrade() -> None:
    op.create_table(
        "acceptance_deadlines",
        sa.Column("order_id", sa.String(length=36), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_acceptance_deadlines_due_at", "acceptance_deadlines", ["due_at"])
    conn = op.get_bind()
    due = datetime.now(UTC) + ACCEPT_TIMEOUT
    rows = [
        {"order_id": order_id, "due_at": due}
        for order_id in conn.execute(sa.select(orders.c.id).where(orders.c.status == "PLACED"))
        .scalars()
        .all()
    ]
    if rows:
        conn.execute(deadlines.insert(), rows)


def downgrade() -> None:
    op.drop_index("ix_acceptance_deadlines_due_at", table_name="acceptance_deadlines")
    op.drop_table("acceptance_deadlines")
