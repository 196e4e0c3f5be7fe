"""subscriber_lag: per component queue, the oldest event the redelivery sweep found that its
subscribers have not applied, which /metrics reports as an age and an alert rule watches."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_lag",
        sa.Column("queue", sa.String(length=50), primary_key=True),
        sa.Column("oldest_unapplied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subscriber_lag")
