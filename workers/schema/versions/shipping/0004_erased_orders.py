"""erased_orders: the orders whose customer.erased shipping heard, so data about one of them that
arrives afterwards (a message in flight, or retried) is kept erased (issue #14)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_orders",
        sa.Column("order_id", sa.String(length=36), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erased_orders")
