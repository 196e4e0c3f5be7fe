"""Indexes for the operators' reads, so they cost the same however much history there is:
outbox.subject (the saga view), dead_letters by status and last failure (the list of parked
letters) and by status and queue (the parked-per-queue metric)."""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_subject", "outbox", ["subject"])
    op.create_index(
        "ix_dead_letters_status_last_failed_at", "dead_letters", ["status", "last_failed_at"]
    )
    op.create_index("ix_dead_letters_status_queue", "dead_letters", ["status", "queue"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_status_queue", table_name="dead_letters")
    op.drop_index("ix_dead_letters_status_last_failed_at", table_name="dead_letters")
    op.drop_index("ix_outbox_subject", table_name="outbox")
