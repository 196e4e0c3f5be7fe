"""The orders needing an operator (shop.tables.attention): a compensation of theirs failed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attention",
        sa.Column("order_id", sa.String(length=36), primary_key=True),
        sa.Column("reason", sa.String(length=50), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attention_reason", "attention", ["reason"])


def downgrade() -> None:
    op.drop_index("ix_attention_reason", table_name="attention")
    op.drop_table("attention")
