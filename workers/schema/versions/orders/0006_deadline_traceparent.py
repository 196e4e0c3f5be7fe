"""A deadline keeps the trace context of the event that set it (issue #19, traces), so the
order.deadline_passed its timer processes joins the order's trace.

Deadlines set before this revision, and every one set while tracing is off, keep NULL: the timer
then processes their order.deadline_passed in a trace of its own, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deadlines") as batch_op:
        # A W3C traceparent, version 00: 55 characters.
        batch_op.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deadlines") as batch_op:
        batch_op.drop_column("traceparent")
