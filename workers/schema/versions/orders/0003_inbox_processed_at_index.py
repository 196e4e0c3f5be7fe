"""An index on inbox.processed_at: the relay prunes inbox rows past SHOESHOP_INBOX_RETENTION
(workers.operations.retention), and finds them by the time each was applied."""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
