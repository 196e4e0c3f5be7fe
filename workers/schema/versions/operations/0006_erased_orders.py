"""The orders whose customer was erased, so the relay archives their outbox rows erased
(workers.operations.retention): a row pruned between an erasure and its component's hearing of
it would otherwise reach an archive file with the personal data still in it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
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
