"""Checkouts remember the HMAC of their body, so an Idempotency-Key sent again with another body
is refused instead of answered with the first order.

Checkouts made before this revision keep NULL: there is no body left to compute it from, and the
shop takes them as matching, as it did.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkouts") as batch_op:
        batch_op.add_column(sa.Column("body_hmac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkouts") as batch_op:
        batch_op.drop_column("body_hmac")
