"""An index on outbox.subject: the operators' saga view finds an order's events by it, in every
component's outbox, however long the outbox has grown."""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_subject", "outbox", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_outbox_subject", table_name="outbox")
