"""archive_dirs: every directory the relay has archived pruned rows into, for the erasure to
rewrite each whatever its own environment names."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_dirs",
        sa.Column("path", sa.String(length=1000), primary_key=True),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_dirs")
